"""scglassbox: glass-box parametric UMAP for scverse.

The embedding of every cell is an exact sum of per-gene contributions.

>>> import scglassbox as gb
"""

import os

# Set before torch loads its OpenMP runtime: with the default "active" policy, idle OpenMP
# workers of numba (started by sc.pp.neighbors / umap-learn) and of torch spin and starve each
# other, which made CPU training up to 25x slower in one process (measured on pbmc68k_reduced,
# 2 cores). A user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from importlib.metadata import PackageNotFoundError, version

from . import datasets, get, pl, tl
from ._estimator import GlassBoxUMAP

try:
    __version__ = version("scglassbox")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["GlassBoxUMAP", "__version__", "datasets", "get", "pl", "tl"]
