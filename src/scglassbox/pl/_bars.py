"""Bar and line charts: mean contributions of a selection, global importance, training loss."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .. import _keys
from .._docs import doc_params
from .._views import check_dims, dims_from_dimensions, renamed
from . import _read as v
from ._utils import finish, panels

#: Bar colours: unsigned views; positive / negative signed contributions (ends of RdBu).
BAR_COLOR = "#4C72B0"
POS_COLOR = "#b2182b"
NEG_COLOR = "#2166ac"


def _selections(
    adata: AnnData,
    groupby: str | None,
    groups: str | Sequence[str] | None,
    mask: object,
) -> list[tuple[str, np.ndarray]]:
    """``(title, cell mask)`` per panel."""
    if mask is not None:
        if groupby is not None or groups is not None:
            raise ValueError("Pass either mask or groupby/groups, not both.")
        return [("selected cells", v.obs_mask(adata, mask))]
    if groupby is None:
        if groups is not None:
            raise ValueError("groups needs groupby.")
        return [("all cells", np.ones(adata.n_obs, dtype=bool))]
    cat = v.categorical(adata, groupby)
    cats = list(cat.categories)
    wanted = _wanted_groups(groups, cats, f"not in adata.obs[{groupby!r}]")
    col = np.asarray(cat)
    return [(f"{groupby}: {g}", col == g) for g in wanted]


def _wanted_groups(groups: str | Sequence[str] | None, available: list, why: str) -> list:
    """``groups`` as a list (default: all ``available``); unknown ones raise one KeyError."""
    wanted = available if groups is None else [groups] if isinstance(groups, str) else list(groups)
    missing = [g for g in wanted if g not in available]
    if missing:
        raise KeyError(f"groups {missing} {why}: {available}.")
    return wanted


def _barh(
    ax: Axes,
    genes: np.ndarray,
    mean: np.ndarray,
    err: np.ndarray | None,
    *,
    signed: bool,
    xlabel: str,
    title: str,
    pull: np.ndarray | None = None,
) -> None:
    """Horizontal bars, first gene at the top; coloured by the sign of ``pull`` when given."""
    y = np.arange(len(genes))[::-1]
    colors = np.where(mean >= 0, POS_COLOR, NEG_COLOR) if signed else BAR_COLOR
    if pull is not None:
        colors = np.where(pull >= 0, POS_COLOR, NEG_COLOR)
    ax.barh(
        y,
        mean,
        xerr=err,
        color=colors,
        height=0.75,
        error_kw={"ecolor": "0.25", "elinewidth": 0.8, "capsize": 2},
    )
    if signed:
        ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y, labels=list(genes))
    ax.set_ylim(-0.6, len(genes) - 0.4)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _bar_panel_size(n_genes: int) -> tuple[float, float]:
    return 3.8, 0.9 + 0.22 * n_genes


@doc_params
def contribution_bars(
    adata: AnnData,
    *,
    groupby: str | None = None,
    groups: str | Sequence[str] | None = None,
    mask: np.ndarray | str | None = None,
    view: str = "l2",
    n_genes: int = 20,
    key: str = _keys.DEFAULT_KEY,
    ncols: int = 4,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
) -> Figure | Axes | list[Axes] | None:
    """Top genes by mean contribution, with SEM error bars, for a selection of cells.

    The selection is all cells (default), each group of ``groupby`` (one panel per group;
    ``groups`` restricts which), or a boolean cohort ``mask``. Genes are ranked by their mean
    (by the absolute mean for the signed ``'dimK'`` views, whose bars are red when positive
    and blue when negative).

    Parameters
    ----------
    {adata}
    groupby
        A categorical ``obs`` column: one panel per group.
    groups
        Only these groups of ``groupby`` (to pool groups into one selection, pass
        ``mask=adata.obs[groupby].isin(groups)`` instead).
    mask
        A boolean array over cells or the name of a boolean ``obs`` column.
    {view}
    n_genes
        Genes per panel.
    {key}
    {panels}

    Returns
    -------
    {plot_returns}

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.pl.contribution_bars(adata, n_genes=15)

    .. image:: /_static/plots/contribution_bars.png

    Per group, signed contributions to the first dimension:

    >>> gb.pl.contribution_bars(
    ...     adata, groupby="bulk_labels", groups=["CD14+ Monocyte", "CD56+ NK", "CD19+ B"],
    ...     view="dim1", n_genes=10,
    ... )

    .. image:: /_static/plots/contribution_bars_groups_dim1.png
    """
    checked = v.check_view(adata, view, key)
    if n_genes < 1:
        raise ValueError(f"n_genes must be >= 1, got {n_genes}.")
    sels = _selections(adata, groupby, groups, mask)
    mean, sem, counts, names = v.selection_stats(adata, view, key, [m for _, m in sels])
    signed = checked.signed
    fig, axs = panels(len(sels), ax=ax, ncols=ncols, panel_size=_bar_panel_size(n_genes))
    for i, ((title, _), a) in enumerate(zip(sels, axs, strict=True)):
        score = np.abs(mean[i]) if signed else mean[i]
        top = np.argsort(-score, kind="stable")[:n_genes]
        _barh(
            a,
            names[top],
            mean[i, top],
            sem[i, top],
            signed=signed,
            xlabel=f"mean {checked.label}",
            title=f"{title} (n={counts[i]:,})",
        )
    return finish(fig, axs, "gb_contribution_bars", show=show, return_fig=return_fig, save=save)


@doc_params
def ranking(
    adata: AnnData,
    *,
    n_genes: int = 20,
    dims: int | Sequence[int] | None = None,
    key: str = _keys.DEFAULT_KEY,
    ncols: int = 4,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
    dimensions: int | Sequence[int] | None = None,
) -> Figure | Axes | list[Axes] | None:
    """Global gene importance: mean absolute contribution per embedding dimension.

    Reads :func:`scglassbox.get.gene_importance_df` (so it also works when per-cell
    contributions were not stored); one panel per dimension.

    Parameters
    ----------
    {adata}
    n_genes
        Genes per panel.
    dims
        Dimensions to show, 0-based as everywhere in the package (default: all); panel
        ``dim 1`` is ``dims=0``.
    {key}
    {panels}
    dimensions
        Deprecated: 1-based dimensions (``dimensions=1`` is ``dims=0``), kept for one release.

    Returns
    -------
    {plot_returns}

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.pl.ranking(adata, n_genes=15)

    .. image:: /_static/plots/ranking.png
    """
    from ..get import gene_importance_df

    v.key_info(adata, key)
    df = gene_importance_df(adata, key=key)
    n_dims = df.shape[1] - 1  # dim1, dim2, ..., total
    if dimensions is not None:
        dims = renamed("dimensions", "dims", dims_from_dimensions(dimensions), dims)
    chosen = check_dims(dims, n_dims, "dims" if dimensions is None else "dimensions - 1")
    fig, axs = panels(len(chosen), ax=ax, ncols=ncols, panel_size=_bar_panel_size(n_genes))
    for d, a in zip(chosen, axs, strict=True):
        col = df[f"dim{d + 1}"].sort_values(ascending=False, kind="stable").iloc[:n_genes]
        _barh(
            a,
            col.index.to_numpy(),
            col.to_numpy(),
            None,
            signed=False,
            xlabel="mean |contribution|",
            title=f"dim {d + 1}",
        )
    return finish(fig, axs, "gb_ranking", show=show, return_fig=return_fig, save=save)


@doc_params
def loss(
    adata: AnnData,
    *,
    key: str = _keys.DEFAULT_KEY,
    log: bool = False,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
) -> Figure | Axes | None:
    """Training loss per epoch, with the lowest epoch marked.

    Parameters
    ----------
    {adata}
    {key}
    log
        Logarithmic y axis.
    {show_ax}

    Returns
    -------
    The axes when ``show=False``, the figure when ``return_fig=True``, else ``None``.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.pl.loss(adata)

    .. image:: /_static/plots/loss.png
    """
    uns = v.key_info(adata, key)
    hist = np.asarray(uns.get("loss_history", []), dtype=np.float64).ravel()
    if hist.size == 0:
        raise ValueError(f"adata.uns[{key!r}]['loss_history'] is empty or missing.")
    fig, axs = panels(1, ax=ax, ncols=1, panel_size=(4.5, 3.2))
    a = axs[0]
    epochs = np.arange(1, hist.size + 1)
    a.plot(epochs, hist, color=BAR_COLOR, lw=1.5, marker="o" if hist.size <= 50 else None, ms=3)
    best = int(np.nanargmin(hist))
    a.plot(epochs[best], hist[best], "o", color=POS_COLOR, ms=6, label=f"lowest: epoch {best + 1}")
    a.set(xlabel="epoch", ylabel="loss", title=f"{key}: training loss")
    if log:
        a.set_yscale("log")
    a.legend(frameon=False)
    a.grid(alpha=0.3)
    for side in ("top", "right"):
        a.spines[side].set_visible(False)
    return finish(fig, a, "gb_loss", show=show, return_fig=return_fig, save=save)


@doc_params
def rank_contributions(
    adata: AnnData,
    groupby: str,
    *,
    groups: str | Sequence[str] | None = None,
    n_genes: int = 15,
    key: str = _keys.DEFAULT_KEY,
    uns_key: str | None = None,
    reference: str | None = None,
    ncols: int = 4,
    show: bool | None = None,
    ax: Axes | None = None,
    return_fig: bool = False,
    save: str | os.PathLike | bool | None = None,
) -> Figure | Axes | list[Axes] | None:
    """Top genes per group from :func:`scglassbox.tl.rank_contributions`, with SEM bars.

    Like :func:`scanpy.pl.rank_genes_groups`: one panel per group. Without a ``reference``,
    bars are red when the gene moves the group to where it lies on the map (seen from the mean
    cell, the origin), blue when it holds the group back (``toward`` in
    :func:`~scglassbox.get.rank_contributions_df`). With a ``reference``, each
    bar is the gene's share of the distance between the group and the reference (signed: red
    pushes the group away from the reference, blue pulls it towards it), and the panel title
    gives that distance; the shares sum to it exactly.

    Parameters
    ----------
    {adata}
    groupby
        The ``groupby`` of the ranking.
    groups
        Only these groups (default: all ranked).
    n_genes
        Genes per panel.
    {key}
    uns_key
        Read this ``uns`` entry instead of ``key + '_rank_' + groupby``.
    reference
        Show the comparison with this ``reference`` (stored under a key of its own).
    {panels}

    Returns
    -------
    {plot_returns}

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata)
    >>> gb.tl.rank_contributions(adata, "bulk_labels", groups=["CD14+ Monocyte"],
    ...                          reference="Dendritic")
    >>> gb.pl.rank_contributions(adata, "bulk_labels", reference="Dendritic")

    .. image:: /_static/plots/rank_contributions.png
    """
    from ..get._get import genes_by_groups, ranking_result

    if n_genes < 1:
        raise ValueError(f"n_genes must be >= 1, got {n_genes}.")
    res = ranking_result(adata, groupby, key=key, uns_key=uns_key, reference=reference)
    mean, sem = genes_by_groups(res, "mean"), genes_by_groups(res, "sem")
    reference = str(np.asarray(res["params"].get("reference", "none")))
    wanted = _wanted_groups(groups, list(mean.columns), "were not ranked")
    differential = reference != "none"
    toward = None
    if not differential and "toward" in res:
        toward = genes_by_groups(res, "toward")
    sizes = adata.obs[groupby].astype(str).value_counts()
    fig, axs = panels(len(wanted), ax=ax, ncols=ncols, panel_size=_bar_panel_size(n_genes))
    for g, a in zip(wanted, axs, strict=True):
        col = mean[g]
        order = (col.abs() if differential else col).sort_values(ascending=False, kind="stable")
        top = order.index[:n_genes]
        n_cells = int(sizes.get(str(g), 0))
        if differential:
            title = f"{g} (n={n_cells}) vs {reference}\n(distance {col.sum():.2f})"
            # Absolute, not shares: over all genes they sum to the distance in the title.
            xlabel = f"contribution to the distance (all genes: {col.sum():.2f})"
        else:
            label = v.check_view(adata, str(np.asarray(res["params"]["view"])), key).label
            title, xlabel = f"{groupby}: {g} (n={n_cells})", f"mean {label}"
        pull = None if toward is None else toward.loc[top, g].to_numpy()
        _barh(a, top.to_numpy(), col[top].to_numpy(), sem.loc[top, g].to_numpy(),
              signed=differential, xlabel=xlabel, title=title, pull=pull)  # fmt: skip
    if toward is not None:
        # In the first panel, not on the figure: ``ax=`` may be the user's own figure.
        axs[0].legend(
            handles=[Patch(color=POS_COLOR), Patch(color=NEG_COLOR)],
            labels=["moves the group to its place", "holds it back"],
            loc="upper left", bbox_to_anchor=(0.0, -0.16), ncol=2, fontsize="small",
            frameon=False,
        )  # fmt: skip
    return finish(fig, axs, "gb_rank_contributions", show=show, return_fig=return_fig, save=save)
