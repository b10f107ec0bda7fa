"""scglassbox: glass-box parametric UMAP for scverse.

The embedding of every cell is an exact sum of per-gene contributions.

>>> import scglassbox as gb
"""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, get, pl, tl
from ._estimator import GlassBoxUMAP

try:
    __version__ = version("scglassbox")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["GlassBoxUMAP", "__version__", "datasets", "get", "pl", "tl"]
