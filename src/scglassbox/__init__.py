"""scglassbox: glass-box parametric UMAP for scverse.

The embedding of every cell is an exact sum of per-gene contributions.

>>> import scglassbox as gb
"""

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for type checkers and IDEs; at run time they load on first use
    from . import datasets, get, pl, tl
    from ._encoder import register_encoder
    from ._estimator import GlassBoxUMAP

try:
    __version__ = version("scglassbox")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["GlassBoxUMAP", "__version__", "datasets", "get", "pl", "register_encoder", "tl"]


_SUBMODULES = ("datasets", "get", "pl", "tl")


def __getattr__(name: str) -> object:
    # Loaded on first use: the submodules import scanpy (seconds), the estimator torch and
    # Lightning; `scglassbox --help` and `--version` need none of them.
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "GlassBoxUMAP":
        from ._estimator import GlassBoxUMAP

        return GlassBoxUMAP
    if name == "register_encoder":
        from . import _torch  # noqa: F401  (torch loads under the OpenMP wait policy)
        from ._encoder import register_encoder

        return register_encoder
    raise AttributeError(f"module 'scglassbox' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
