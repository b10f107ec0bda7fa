"""The glass-box embedding, coloured by the cells' own data or by gene contributions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import _keys
from .._docs import doc_params
from .._views import View
from . import _read as v
from ._utils import OTHER_COLOR, finish, palette, panels

#: Size of one embedding panel in inches (as scanpy's default ``figure.figsize`` of 4 x 4
#: plus room for the colour bar).
PANEL_SIZE = (4.6, 4.0)


@doc_params
def glassbox_umap(
    adata: AnnData,
    *,
    color: str | Sequence[str] | None = None,
    key: str = _keys.DEFAULT_KEY,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
    **kwargs: Any,
) -> Figure | Axes | list[Axes] | None:
    """Scatter plot of the glass-box UMAP embedding.

    A thin wrapper of :func:`scanpy.pl.embedding` with ``basis=key``; everything scanpy
    accepts (``color`` as obs columns or genes, ``groups``, ``palette``, ``ncols``, ...) works
    the same way. As in scanpy, colouring by a categorical column without colours stored in
    ``adata.uns[color + '_colors']`` stores scanpy's default colours there.

    Parameters
    ----------
    {adata}
    color
        Keys of ``obs`` or genes to colour by.
    {key}
    {show_ax}
    **kwargs
        Passed on to :func:`scanpy.pl.embedding`.

    Returns
    -------
    As :func:`scanpy.pl.embedding`: the axes (or list of axes) when ``show=False``, the
    figure when ``return_fig=True``, else ``None``.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.pl.glassbox_umap(adata, color=["bulk_labels", "louvain"], wspace=0.5)

    .. image:: /_static/plots/glassbox_umap.png
    """
    import scanpy as sc

    v.embedding(adata, key)  # clear error if the fit is missing
    axes = sc.pl.embedding(adata, basis=key, color=color, show=False, ax=ax, **kwargs)
    fig = (axes[0] if isinstance(axes, list) else axes).figure
    return finish(fig, axes, "gb_glassbox_umap", show=show, return_fig=return_fig, save=save)


def _panel(
    values: np.ndarray,
    emb: np.ndarray,
    obs_names: pd.Index,
    *,
    key: str,
    title: str,
    ax: Axes,
    signed: bool,
    kwargs: dict[str, Any],
    cbar_label: str | None = None,
) -> None:
    """One embedding panel coloured by ``values`` via :func:`scanpy.pl.embedding`."""
    import scanpy as sc

    kw = dict(kwargs)
    if signed:
        # Strongest contributions (either sign) on top; symmetric limits centred on 0.
        order = np.argsort(np.abs(values), kind="stable")
        vmax = kw.pop("vmax", None)
        vmin = kw.pop("vmin", None)
        m = float(np.abs(values).max()) if vmax is None else float(vmax)
        m = m if m > 0 else 1.0
        kw.setdefault("cmap", "RdBu_r")
        kw.update(vmin=-m if vmin is None else vmin, vmax=m, sort_order=False)
    else:
        order = np.arange(len(values))
        kw.setdefault("cmap", "viridis")
    tmp = AnnData(
        obs=pd.DataFrame({"value": values[order]}, index=obs_names[order].astype(str)),
        obsm={f"X_{key}": emb[order]},
    )
    sc.pl.embedding(tmp, basis=key, color="value", title=title, ax=ax, show=False, **kw)
    bar = getattr(ax.collections[-1], "colorbar", None) if ax.collections else None
    if bar is not None and cbar_label:
        bar.set_label(cbar_label)


def colorbar_label(view: View, key: str) -> str:
    """What a contribution view means, in words, for a colour bar."""
    if view.signed:
        return f"push along {key}{view.dim + 1} (red +, blue -)"
    if view.normed:
        return "share of the cell's position (normed L2)"
    return "contribution to the cell's position (L2)"


@doc_params
def contributions(
    adata: AnnData,
    genes: str | Sequence[str],
    *,
    view: str = "l2",
    key: str = _keys.DEFAULT_KEY,
    ncols: int = 4,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
    **kwargs: Any,
) -> Figure | Axes | list[Axes] | None:
    """The embedding coloured by each gene's per-cell contribution, one panel per gene.

    Signed views (``'dim1'``, ``'dim2'``, ...) use a diverging colour map centred on zero
    (``'RdBu_r'``, symmetric limits) and draw the strongest contributions on top.

    Parameters
    ----------
    {adata}
    genes
        One gene or several (each must be among ``adata.uns[key]['var_names']``).
    {view}
    {key}
    {panels}
    **kwargs
        Passed on to :func:`scanpy.pl.embedding` (``size``, ``cmap``, ``vmax``, ``frameon``,
        ...). With a signed view, ``vmax`` sets the symmetric limit.

    Returns
    -------
    The axes (list of axes for several genes) when ``show=False``, the figure when
    ``return_fig=True``, else ``None``.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> genes = ["CST3", "NKG7", "HLA-DRA", "CD79A"]
    >>> gb.pl.contributions(adata, genes)

    .. image:: /_static/plots/contributions_l2.png

    Signed contributions to the first dimension (red: pushes the cell right, blue: left):

    >>> gb.pl.contributions(adata, genes, view="dim1")

    .. image:: /_static/plots/contributions_dim1.png
    """
    genes = [genes] if isinstance(genes, str) else list(genes)
    if not genes:
        raise ValueError("genes is empty.")
    values, names = v.contribution_view(adata, view, key, genes=genes)
    emb = v.embedding(adata, key)
    checked = v.check_view(adata, view, key)
    signed = checked.signed
    fig, axs = panels(len(genes), ax=ax, ncols=ncols, panel_size=PANEL_SIZE)
    label = colorbar_label(checked, key)
    for i, (gene, a) in enumerate(zip(names, axs, strict=True)):
        _panel(
            values[:, i],
            emb,
            adata.obs_names,
            key=key,
            title=str(gene),
            ax=a,
            signed=signed,
            kwargs=kwargs,
            cbar_label=label,
        )
    return finish(fig, axs, "gb_contributions", show=show, return_fig=return_fig, save=save)


def top_feature_labels(
    adata: AnnData, *, n_top: int = 10, key: str = _keys.DEFAULT_KEY
) -> pd.Categorical:
    """Each cell's top contributing gene (by L2), keeping the ``n_top`` most frequent.

    Cells whose top gene is rarer are labelled ``'other'`` (always the last category).
    """
    if n_top < 1:
        raise ValueError(f"n_top must be >= 1, got {n_top}.")
    top = np.empty(adata.n_obs, dtype=np.int64)
    names = v.gene_names(adata, key)
    for rows, values in v.iter_views(adata, "l2", key):
        top[rows] = values.argmax(axis=1)
    counts = np.bincount(top, minlength=len(names))
    keep = np.argsort(-counts, kind="stable")[:n_top]
    keep = keep[counts[keep] > 0]
    labels = np.where(np.isin(top, keep), names[top], "other")
    cats = [*names[keep]] + (["other"] if (~np.isin(top, keep)).any() else [])
    return pd.Categorical(labels, categories=cats)


@doc_params
def top_feature(
    adata: AnnData,
    *,
    n_top: int = 10,
    key: str = _keys.DEFAULT_KEY,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
    **kwargs: Any,
) -> Figure | Axes | None:
    """The embedding with each cell coloured by its top contributing gene (by L2).

    Parameters
    ----------
    {adata}
    n_top
        Show the ``n_top`` genes that are most often a cell's top gene; the other cells are
        labelled ``'other'`` (light grey, drawn underneath).
    {key}
    {show_ax}
    **kwargs
        Passed on to :func:`scanpy.pl.embedding` (``size``, ``legend_loc``, ...).

    Returns
    -------
    The axes when ``show=False``, the figure when ``return_fig=True``, else ``None``.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.pl.top_feature(adata)

    .. image:: /_static/plots/top_feature.png
    """
    import scanpy as sc

    labels = top_feature_labels(adata, n_top=n_top, key=key)
    emb = v.embedding(adata, key)
    cats = list(labels.categories)
    colors = palette(None, None, [c for c in cats if c != "other"])
    if "other" in cats:
        colors.append(OTHER_COLOR)
    is_other = np.asarray(labels == "other")
    order = np.argsort(~is_other, kind="stable")  # 'other' first, i.e. underneath
    col = "top contributing gene"
    tmp = AnnData(
        obs=pd.DataFrame({col: labels[order]}, index=adata.obs_names[order].astype(str)),
        obsm={f"X_{key}": emb[order]},
    )
    tmp.uns[f"{col}_colors"] = np.array(colors, dtype=object)
    fig, axs = panels(1, ax=ax, ncols=1, panel_size=(PANEL_SIZE[0] + 1.4, PANEL_SIZE[1]))
    sc.pl.embedding(tmp, basis=key, color=col, ax=axs[0], show=False, **kwargs)
    legend = axs[0].get_legend()
    if legend is not None:
        legend.set_title("top gene" + (" (grey: rarer)" if "other" in cats else ""))
    return finish(fig, axs[0], "gb_top_feature", show=show, return_fig=return_fig, save=save)


@doc_params
def batch_share(
    adata: AnnData,
    *,
    key: str = _keys.DEFAULT_KEY,
    show: bool | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
    **kwargs: Any,
) -> Figure | list[Axes] | None:
    """The embedding coloured by batch, and by how much of each cell's place its batch explains.

    For a fit with ``batch_key`` (:func:`~scglassbox.tl.glassbox_umap`): the left panel shows
    the batches, the right one ``obs[key + '_batch_share']``, the batch term's share of the
    cell's explanation (its L2 norm over the sum of every feature's). Where the share is high,
    the map places cells by their batch rather than their genes.

    Parameters
    ----------
    {adata}
    {key}
    {show_save}
    **kwargs
        Passed on to :func:`scanpy.pl.embedding` (``size``, ``legend_loc``, ...).

    Returns
    -------
    The two axes when ``show=False``, the figure when ``return_fig=True``, else ``None``.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = gb.datasets.synthetic_scrna(600, 200, n_batches=3, seed=0)
    >>> sc.pp.log1p(adata)
    >>> sc.pp.pca(adata, n_comps=20)
    >>> sc.pp.neighbors(adata)
    >>> gb.tl.glassbox_umap(adata, batch_key="batch", quiet=True)
    >>> gb.pl.batch_share(adata)

    .. image:: /_static/plots/batch_share.png
    """
    import scanpy as sc

    from ..get._batch import batch_columns, share_key

    info, _ = batch_columns(adata, key)
    col = share_key(key)
    if col not in adata.obs.columns:
        raise KeyError(f"adata.obs[{col!r}] is missing: rerun gb.tl.glassbox_umap(batch_key=...).")
    emb = v.embedding(adata, key)
    batches = adata.obs[info.key].astype(str).to_numpy()
    cats = [str(c) for c in info.levels if c in set(batches)]
    tmp = AnnData(
        obs=pd.DataFrame(
            {info.key: pd.Categorical(batches, categories=cats)},
            index=adata.obs_names.astype(str),
        ),
        obsm={f"X_{key}": emb},
    )
    tmp.uns[f"{info.key}_colors"] = np.array(palette(adata, info.key, cats), dtype=object)
    fig, axs = panels(2, ax=None, ncols=2, panel_size=PANEL_SIZE)
    sc.pl.embedding(tmp, basis=key, color=info.key, ax=axs[0], show=False, **kwargs)
    share = np.asarray(adata.obs[col], dtype=np.float32)
    _panel(share, emb, adata.obs_names, key=key, title="batch share", ax=axs[1], signed=False,
           kwargs=kwargs, cbar_label="batch term / all contributions (L2)")  # fmt: skip
    return finish(fig, axs, "gb_batch_share", show=show, return_fig=return_fig, save=save)
