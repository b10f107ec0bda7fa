"""Groups x top genes: scanpy's matrixplot and dotplot on contributions instead of expression."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes

from .._docs import doc_params
from . import _views as v

if TYPE_CHECKING:
    from scanpy.pl import DotPlot, MatrixPlot


def top_genes_per_group(
    adata: AnnData,
    groupby: str,
    *,
    n_genes: int,
    view: str,
    key: str,
    groups: Sequence[str] | None = None,
) -> tuple[dict[str, list[str]], pd.DataFrame]:
    """The ``n_genes`` largest mean contributors of each group (by |mean| for signed views).

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
    score = means.abs() if v.is_signed(view) else means
    top = {
        str(g): list(score.loc[g].sort_values(ascending=False, kind="stable").index[:n_genes])
        for g in cats
    }
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


def _colorbar_title(view: str) -> str:
    """Short two-line title (scanpy's colour bar legend is narrow)."""
    if view in ("l2", "normed_l2"):
        return f"mean {'normed ' if view == 'normed_l2' else ''}L2\ncontribution in group"
    return f"mean contribution\nto dim {view[3:]} in group"


def _unique(genes: dict[str, list[str]]) -> list[str]:
    return list(dict.fromkeys(g for gs in genes.values() for g in gs))


@doc_params
def contribution_matrixplot(
    adata: AnnData,
    groupby: str,
    *,
    n_genes: int = 5,
    view: str = "normed_l2",
    groups: Sequence[str] | None = None,
    key: str = "glassbox_umap",
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    **kwargs: Any,
) -> MatrixPlot | dict[str, Axes] | None:
    """Mean contribution of each group's top genes, as :func:`scanpy.pl.matrixplot`.

    For every group of ``groupby`` the ``n_genes`` genes with the largest mean contribution
    are chosen (a gene may be listed under several groups); the heatmap shows the mean
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
    {key}
    {show}
    ax
        Draw into this axes.
    return_fig
        Return the :class:`scanpy.pl.MatrixPlot` object.
    **kwargs
        Passed on to :func:`scanpy.pl.matrixplot` (``standard_scale``, ``cmap``,
        ``dendrogram``, ``swap_axes``, ...).

    Returns
    -------
    As :func:`scanpy.pl.matrixplot`.
    """
    import scanpy as sc

    top, means = top_genes_per_group(
        adata, groupby, n_genes=n_genes, view=view, key=key, groups=groups
    )
    genes = _unique(top)
    X, _ = v.contribution_view(adata, view, key, genes=genes)
    tmp = _temp_adata(adata, groupby, genes, X, list(means.index))
    if v.is_signed(view):
        kwargs.setdefault("cmap", "RdBu_r")
        kwargs.setdefault("vcenter", 0.0)
    kwargs.setdefault("colorbar_title", _colorbar_title(view))
    return sc.pl.matrixplot(
        tmp, top, groupby, show=show, ax=ax, return_fig=return_fig, use_raw=False, **kwargs
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
    key: str = "glassbox_umap",
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
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
    {key}
    {show}
    ax
        Draw into this axes.
    return_fig
        Return the :class:`scanpy.pl.DotPlot` object.
    **kwargs
        Passed on to :func:`scanpy.pl.dotplot` (``cmap``, ``dot_max``, ``swap_axes``, ...).

    Returns
    -------
    As :func:`scanpy.pl.dotplot`.
    """
    import scanpy as sc

    top, means = top_genes_per_group(
        adata, groupby, n_genes=n_genes, view=view, key=key, groups=groups
    )
    genes = _unique(top)
    hits = v.in_top_k(adata, view, key, genes, top_k)
    tmp = _temp_adata(adata, groupby, genes, hits.astype(np.float32), list(means.index))
    flat = [g for gs in top.values() for g in gs]
    color_df = means.loc[:, flat]
    color_df.columns = flat
    color_df.index = color_df.index.astype(str)
    color_df.index.name = groupby
    if v.is_signed(view):
        kwargs.setdefault("cmap", "RdBu_r")
        kwargs.setdefault("vcenter", 0.0)
    kwargs.setdefault("colorbar_title", _colorbar_title(view))
    kwargs.setdefault("size_title", f"% of cells with gene\nin their top {top_k}")
    return sc.pl.dotplot(
        tmp,
        top,
        groupby,
        dot_color_df=color_df,
        expression_cutoff=0.5,
        show=show,
        ax=ax,
        return_fig=return_fig,
        use_raw=False,
        **kwargs,
    )
