"""scglassbox: glass-box parametric UMAP for scverse.

The embedding of every cell is an exact sum of per-gene contributions.

>>> import scglassbox as gb
"""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, get, pl, tl

try:
    __version__ = version("scglassbox")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["GlassBoxUMAP", "__version__", "datasets", "get", "pl", "tl"]


def __getattr__(name: str) -> object:
    # The estimator needs torch and Lightning (seconds to import): load them on first use.
    if name == "GlassBoxUMAP":
        from ._estimator import GlassBoxUMAP

        return GlassBoxUMAP
    raise AttributeError(f"module 'scglassbox' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
