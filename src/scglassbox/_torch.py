"""Import torch on first use, with OpenMP workers that sleep instead of spinning.

With OpenMP's default "active" wait policy, idle workers of numba (sc.pp.neighbors,
umap-learn) and of torch spin and starve each other: CPU training was up to 25x slower in one
process (pbmc68k_reduced, 2 cores). The policy is read once, when torch's OpenMP runtime loads,
so it is set only around that import and the user's environment is restored right after (a
user's own setting wins). ``import scglassbox`` itself loads neither torch nor Lightning.
"""

from __future__ import annotations

import os
import sys


def load_torch() -> None:
    """Import torch (once) under ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy."""
    if "torch" in sys.modules:
        return
    user_set = "OMP_WAIT_POLICY" in os.environ
    if not user_set:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    try:
        import torch  # noqa: F401
    finally:
        if not user_set:
            del os.environ["OMP_WAIT_POLICY"]


load_torch()
