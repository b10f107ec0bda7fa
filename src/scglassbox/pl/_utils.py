"""Small helpers shared by the matplotlib plots (scanpy's show / ax / return_fig rules)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Colour of cells outside the listed categories ("other").
OTHER_COLOR = "#d3d3d3"


def finish(
    fig: Figure, axes: Axes | Sequence[Axes], *, show: bool | None, return_fig: bool
) -> Figure | Axes | list[Axes] | None:
    """Return what scanpy's plots return: the figure, the axes, or nothing once shown."""
    import scanpy as sc

    if return_fig:
        return fig
    if sc.settings.autoshow if show is None else show:
        plt.show()
        return None
    return axes


def panels(
    n: int, *, ax: Axes | None, ncols: int, panel_size: tuple[float, float]
) -> tuple[Figure, list[Axes]]:
    """``n`` axes on a grid, or the single ``ax`` passed by the user."""
    if ax is not None:
        if n != 1:
            raise ValueError(f"ax can only be passed for a single panel; this plot has {n}.")
        return ax.figure, [ax]
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axs = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False,
        layout="constrained",
    )
    flat = list(axs.ravel())
    for extra in flat[n:]:
        extra.remove()
    return fig, flat[:n]


def palette(adata: AnnData | None, groupby: str | None, categories: Sequence[str]) -> list[str]:
    """Colours for ``categories``: ``uns[groupby + '_colors']`` if it fits, else scanpy's.

    Never writes into ``adata``.
    """
    from scanpy.plotting import palettes

    if adata is not None and groupby is not None:
        stored = adata.uns.get(f"{groupby}_colors")
        col = adata.obs[groupby] if groupby in adata.obs.columns else None
        if stored is not None and col is not None and hasattr(col, "cat"):
            pos = col.cat.categories.get_indexer(list(categories))
            if len(stored) == len(col.cat.categories) and (pos >= 0).all():
                return [str(stored[i]) for i in pos]
    n = len(categories)
    base = (
        palettes.default_20 if n <= 20 else palettes.default_28 if n <= 28 else palettes.default_102
    )
    return [base[i % len(base)] for i in range(n)]
