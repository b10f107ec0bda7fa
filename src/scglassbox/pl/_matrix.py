"""Groups x top genes: scanpy's matrixplot and dotplot on contributions instead of expression."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import _keys
from .._docs import doc_params
from .._views import View
from . import _read as v
from ._utils import save_figure

if TYPE_CHECKING:
    from scanpy.pl import DotPlot, MatrixPlot
    from scanpy.pl._baseplot_class import BasePlot


def top_genes_per_group(
    adata: AnnData,
    groupby: str,
    *,
    n_genes: int,
    view: str,
    key: str,
    groups: Sequence[str] | None = None,
    unique: bool = False,
) -> tuple[dict[str, list[str]], pd.DataFrame]:
    """The ``n_genes`` largest mean contributors of each group (by |mean| for signed views).

    ``unique``: each gene is listed once, under the group where it scores highest; a group's
    genes are then its top ones among the genes it scores highest on.

    Returns
    -------
    ``({group: genes}, means)`` where ``means`` is groups x genes used.
    """
    if n_genes < 1:
        raise ValueError(f"n_genes must be >= 1, got {n_genes}.")
    v.check_view(adata, view, key)
    cat = v.categorical(adata, groupby)
    cats = list(cat.categories) if groups is None else list(groups)
    missing = [g for g in cats if g not in cat.categories]
    if missing:
        raise KeyError(f"groups {missing} not in adata.obs[{groupby!r}].")
    col = np.asarray(cat)
    mean, _, _, names = v.selection_stats(adata, view, key, [col == g for g in cats])
    means = pd.DataFrame(mean, index=pd.Index(cats, name=groupby), columns=names)
    score = means.abs() if v.check_view(adata, view, key).signed else means
    owner = score.idxmax(axis=0) if unique else None  # gene -> the group it scores highest in
    top = {}
    for g in cats:
        ranked = score.loc[g].sort_values(ascending=False, kind="stable").index
        if unique:
            ranked = ranked[(owner[ranked] == g).to_numpy()]
        if len(ranked):  # unique: a group may own no gene (its top genes score higher elsewhere)
            top[str(g)] = list(ranked[:n_genes])
    return top, means


def _temp_adata(
    adata: AnnData, groupby: str, genes: list[str], X: np.ndarray, groups: list[str]
) -> AnnData:
    """A throw-away AnnData: ``X`` over ``genes`` and the ``groupby`` column."""
    cat = v.categorical(adata, groupby)
    keep = np.isin(np.asarray(cat), groups)
    obs = pd.DataFrame(
        {groupby: pd.Categorical(np.asarray(cat)[keep], categories=groups)},
        index=adata.obs_names[keep].astype(str),
    )
    tmp = AnnData(X=np.asarray(X[keep], dtype=np.float32), obs=obs)
    tmp.var_names = genes
    colors = adata.uns.get(f"{groupby}_colors")
    if colors is not None and len(colors) == len(cat.categories):
        pos = list(cat.categories.get_indexer(groups))
        tmp.uns[f"{groupby}_colors"] = [colors[i] for i in pos]
    return tmp


def _top(
    adata: AnnData,
    groupby: str,
    n_genes: int,
    view: str,
    key: str,
    groups: Sequence[str] | None,
    unique: bool,
) -> tuple[dict[str, list[str]], pd.DataFrame, list[str]]:
    """:func:`top_genes_per_group`, and the genes of all groups in order, once each."""
    top, means = top_genes_per_group(
        adata, groupby, n_genes=n_genes, view=view, key=key, groups=groups, unique=unique
    )
    return top, means, _unique(top)


def _view_colours(kwargs: dict[str, Any], view: View) -> None:
    """Default colours of a view: diverging and centred on 0 when signed; the bar's title."""
    if view.signed:
        kwargs.setdefault("cmap", "RdBu_r")
        kwargs.setdefault("vcenter", 0.0)
    kwargs.setdefault("colorbar_title", _colorbar_title(view))


def _colorbar_title(view: View) -> str:
    """Short two-line title (scanpy's colour bar legend is narrow)."""
    if view.signed:
        return f"mean contribution\nto dim {view.dim + 1} in group"
    return f"mean {'normed ' if view.normed else ''}L2\ncontribution in group"


def _unique(genes: dict[str, list[str]]) -> list[str]:
    return list(dict.fromkeys(g for gs in genes.values() for g in gs))


#: Margin (inches) kept around the labels when the figure is grown to hold them.
_PAD = 0.05


def fit_labels(fig: Figure) -> None:
    """Grow ``fig`` so that every label lies inside it, keeping each axes' size in inches.

    scanpy sizes a matrix or dot plot for its cells, not for its labels: the group names
    written above the columns and the long group or gene names at the edges stick out of the
    figure and are cut wherever it is drawn without ``bbox_inches='tight'`` (``plt.show``,
    ``plt.savefig``). Here the figure is enlarged by what sticks out, and the axes move by
    as much, so nothing is cut and nothing is squeezed.
    """
    get_renderer = getattr(fig.canvas, "get_renderer", None)
    renderer = get_renderer() if get_renderer is not None else fig._get_renderer()
    bbox = fig.get_tightbbox(renderer)  # inches, relative to the figure's lower left corner
    w, h = fig.get_size_inches()
    left, bottom = max(0.0, -bbox.x0), max(0.0, -bbox.y0)
    right, top = max(0.0, bbox.x1 - w), max(0.0, bbox.y1 - h)
    if max(left, bottom, right, top) <= 0:
        return
    left, bottom = left + _PAD * (left > 0), bottom + _PAD * (bottom > 0)
    right, top = right + _PAD * (right > 0), top + _PAD * (top > 0)
    new_w, new_h = w + left + right, h + bottom + top
    positions = [(a, a.get_position()) for a in fig.axes]
    fig.set_size_inches(new_w, new_h, forward=False)
    for a, pos in positions:
        a.set_position(
            [
                (pos.x0 * w + left) / new_w,
                (pos.y0 * h + bottom) / new_h,
                pos.width * w / new_w,
                pos.height * h / new_h,
            ]
        )


def _finish(
    plot: BasePlot,
    *,
    ax: Axes | None,
    show: bool | None,
    return_fig: bool,
    save: str | os.PathLike | bool | None = None,
    name: str = "gb_matrix",
):
    """Return what scanpy's matrixplot/dotplot return, with the figure grown to its labels.

    With ``return_fig`` the figure is made later (``.show()``, ``.savefig()``): the fit
    then runs right after scanpy's ``make_figure``. A figure passed in through ``ax`` is the
    user's, and is left as it is.
    """
    import matplotlib.pyplot as plt
    import scanpy as sc

    if ax is None:
        make_figure = plot.make_figure

        def make_and_fit() -> None:
            make_figure()
            fit_labels(plot.fig)

        plot.make_figure = make_and_fit  # what .show(), .savefig() and below call
    if save is not None and save is not False:
        plot.make_figure()
        save_figure(plot.fig, save, name)
    if return_fig:
        return plot
    if plot.fig is None:
        plot.make_figure()
    if sc.settings.autoshow if show is None else show:
        plt.show()
        return None
    return plot.get_axes()


@doc_params
def contribution_matrixplot(
    adata: AnnData,
    groupby: str,
    *,
    n_genes: int = 5,
    view: str = "normed_l2",
    groups: Sequence[str] | None = None,
    unique: bool = True,
    key: str = _keys.DEFAULT_KEY,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
    **kwargs: Any,
) -> MatrixPlot | dict[str, Axes] | None:
    """Mean contribution of each group's top genes, as :func:`scanpy.pl.matrixplot`.

    For every group of ``groupby`` the ``n_genes`` genes with the largest mean contribution
    are chosen (by default each gene once: see ``unique``); the heatmap shows the mean
    contribution of every chosen gene in every group. The AnnData passed in is not modified.

    Parameters
    ----------
    {adata}
    groupby
        A categorical ``obs`` column.
    n_genes
        Top genes per group.
    {view}
    groups
        Only these groups (rows and gene selection).
    unique
        List each gene once, under the group where its mean contribution is largest (each
        group shows its top genes among those); ``False``: each group's own top genes, so a
        gene shared by similar groups repeats.
    {key}
    {show}
    ax
        Draw into this axes.
    return_fig
        Return the :class:`scanpy.pl.MatrixPlot` object.
    {save}
    **kwargs
        Passed on to :func:`scanpy.pl.matrixplot` (``standard_scale``, ``cmap``,
        ``dendrogram``, ``swap_axes``, ...).

    Returns
    -------
    As :func:`scanpy.pl.matrixplot`.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.pl.contribution_matrixplot(adata, "bulk_labels", n_genes=3)

    .. image:: /_static/plots/contribution_matrixplot.png
    """
    import scanpy as sc

    top, means, genes = _top(adata, groupby, n_genes, view, key, groups, unique)
    X, _ = v.contribution_view(adata, view, key, genes=genes)
    tmp = _temp_adata(adata, groupby, genes, X, list(means.index))
    _view_colours(kwargs, v.check_view(adata, view, key))
    plot = sc.pl.matrixplot(tmp, top, groupby, ax=ax, return_fig=True, use_raw=False, **kwargs)
    return _finish(
        plot, ax=ax, show=show, return_fig=return_fig, save=save, name="gb_contribution_matrixplot"
    )


@doc_params
def contribution_dotplot(
    adata: AnnData,
    groupby: str,
    *,
    n_genes: int = 5,
    view: str = "normed_l2",
    top_k: int = 10,
    groups: Sequence[str] | None = None,
    unique: bool = True,
    key: str = _keys.DEFAULT_KEY,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
    **kwargs: Any,
) -> DotPlot | dict[str, Axes] | None:
    """Each group's top genes as :func:`scanpy.pl.dotplot` of contributions.

    Colour: the mean contribution in the group (as in
    :func:`~scglassbox.pl.contribution_matrixplot`). Size: the fraction of the group's cells
    in which the gene is one of the cell's own ``top_k`` contributors (by absolute value),
    i.e. how consistently the gene drives the cells of the group. The AnnData passed in is
    not modified.

    Parameters
    ----------
    {adata}
    groupby
        A categorical ``obs`` column.
    n_genes
        Top genes per group.
    {view}
    top_k
        A gene counts for a cell's dot size when it is among the cell's ``top_k``
        contributors.
    groups
        Only these groups (rows and gene selection).
    unique
        List each gene once, under the group where its mean contribution is largest (each
        group shows its top genes among those); ``False``: each group's own top genes, so a
        gene shared by similar groups repeats.
    {key}
    {show}
    ax
        Draw into this axes.
    return_fig
        Return the :class:`scanpy.pl.DotPlot` object.
    {save}
    **kwargs
        Passed on to :func:`scanpy.pl.dotplot` (``cmap``, ``dot_max``, ``swap_axes``, ...).

    Returns
    -------
    As :func:`scanpy.pl.dotplot`.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.pl.contribution_dotplot(adata, "bulk_labels", n_genes=3)

    .. image:: /_static/plots/contribution_dotplot.png
    """
    import scanpy as sc

    top, means, genes = _top(adata, groupby, n_genes, view, key, groups, unique)
    hits = v.in_top_k(adata, view, key, genes, top_k)
    tmp = _temp_adata(adata, groupby, genes, hits.astype(np.float32), list(means.index))
    flat = [g for gs in top.values() for g in gs]
    color_df = means.loc[:, flat]
    color_df.columns = flat
    color_df.index = color_df.index.astype(str)
    color_df.index.name = groupby
    _view_colours(kwargs, v.check_view(adata, view, key))
    kwargs.setdefault("size_title", f"% of cells with gene\nin their top {top_k}")
    plot = sc.pl.dotplot(
        tmp,
        top,
        groupby,
        dot_color_df=color_df,
        expression_cutoff=0.5,
        ax=ax,
        return_fig=True,
        use_raw=False,
        **kwargs,
    )
    return _finish(
        plot, ax=ax, show=show, return_fig=return_fig, save=save, name="gb_contribution_dotplot"
    )
