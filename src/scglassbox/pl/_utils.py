"""Small helpers shared by the matplotlib plots (scanpy's show / ax / return_fig rules)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: Colour of cells outside the listed categories ("other").
OTHER_COLOR = "#d3d3d3"


def save_figure(fig: Figure, save: str | os.PathLike | bool | None, name: str) -> Path | None:
    """Write ``fig`` as scanpy's ``save=`` does; return the path (``None``: not asked).

    ``True``: ``{figdir}/{name}.{file_format_figs}``; a string: ``{figdir}/{name}{save}``
    (scanpy's suffix rule, the default format added when it has no extension); a
    :class:`~pathlib.Path`: exactly that file.
    """
    import scanpy as sc

    from .. import _logging as logg

    if save is None or save is False:
        return None
    if isinstance(save, os.PathLike):
        path = Path(save)
    elif save is True or isinstance(save, str):
        suffix = "" if save is True else save
        if not Path(suffix).suffix:
            suffix += f".{sc.settings.file_format_figs}"
        path = Path(sc.settings.figdir) / f"{name}{suffix}"
    else:
        raise TypeError(f"save must be True, a file suffix or a path, got {save!r}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")  # dpi: rcParams, as sc.set_figure_params sets it
    logg.info(f"saving figure to file {path}")
    return path


def finish(
    fig: Figure,
    axes: Axes | Sequence[Axes],
    name: str,
    *,
    show: bool | None,
    return_fig: bool,
    save: str | os.PathLike | bool | None = None,
) -> Figure | Axes | list[Axes] | None:
    """Return what scanpy's plots return: the figure, the axes, or nothing once shown.

    One panel's axes are returned alone, several as a list. Saves first when ``save`` asks
    for it (:func:`save_figure`, ``name`` naming the file).
    """
    import scanpy as sc

    if isinstance(axes, list | tuple) and len(axes) == 1:
        axes = axes[0]

    save_figure(fig, save, name)
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
