"""Per-group contribution rankings (the publication's analysis) and differential contributions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys
from .. import _logging as logg
from .._docs import doc_params
from .._views import parse_view
from ..get import _access as acc
from ..get._aggregate import GroupStats, aggregate, membership
from ..get._contributions import iter_contributions
from ..get._markers import de_markers, overlap_rows


def _signed_stats(adata: AnnData, key: str, codes: np.ndarray, n_groups: int) -> GroupStats:
    """Stream the cells once: per-group statistics of the signed contributions."""
    chunks = (
        (membership(codes[pos], n_groups), block) for pos, block in iter_contributions(adata, key)
    )
    return aggregate(chunks, n_groups)


def view_stats_and_toward(
    adata: AnnData,
    key: str,
    codes: np.ndarray,
    n_groups: int,
    view: str,
    combine: np.ndarray | None = None,
) -> tuple[GroupStats, np.ndarray]:
    """One pass over the cells: per-group statistics of ``view``, and each gene's pull.

    The pull (``toward``, groups x genes) is a gene's mean signed contribution projected on the
    direction from the mean cell (the origin) to the group's mean position: positive when the
    gene moves the group's cells to where the group lies, negative when it holds them back.
    Over all genes it sums exactly to that distance. With ``combine`` (genes x programs, rows
    summing to 1) each chunk's contributions are first summed into programs, and everything is
    per program.
    """
    checked = parse_view(view, acc.embedding(adata, key).shape[1])
    signed: list[np.ndarray] = []  # the running per-group sum of signed contributions

    def chunks():
        for pos, block in iter_contributions(adata, key):
            member, c = membership(codes[pos], n_groups), np.asarray(block, dtype=np.float64)
            if combine is not None:
                c = c @ combine
            s = (member @ c.reshape(c.shape[0], -1)).reshape(n_groups, *c.shape[1:])
            signed[:] = [s + signed[0]] if signed else [s]
            yield member, checked.reduce(c)

    stats = aggregate(chunks(), n_groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = signed[0] / stats.count[:, None, None]  # (groups, dims, genes)
    centre = mean.sum(-1)  # the group's mean position, exactly
    u = centre / np.maximum(np.linalg.norm(centre, axis=1, keepdims=True), 1e-30)
    return stats, np.einsum("kd,kdg->kg", u, mean)


def _rest(stats: GroupStats, g: int) -> tuple[float, np.ndarray, np.ndarray]:
    """Count, mean and variance of all groups but ``g`` (cells belong to one group each)."""
    others = np.flatnonzero((np.arange(len(stats.count)) != g) & (stats.count > 0))
    n = stats.count[others].astype(np.float64)
    total = n.sum()
    mean = np.tensordot(n, stats.mean[others], axes=1) / total
    ss = np.tensordot(np.maximum(n - 1, 0), np.nan_to_num(stats.var[others]), axes=1)
    ss += np.tensordot(n, (stats.mean[others] - mean) ** 2, axes=1)
    return total, mean, ss / max(total - 1, 1)


def _differential(
    adata: AnnData, key: str, cats: pd.Categorical, groups: list[str], reference: str
) -> dict:
    """Per group: mean signed contribution minus the reference's, and its projection.

    The projection is on the line joining the two groups' mean positions, so that it sums over
    genes to their distance.
    """
    names = [str(c) for c in cats.categories]
    codes = np.asarray(cats.codes)
    stats = _signed_stats(adata, key, codes, len(names))  # (groups, dims, genes)
    emb = acc.embedding(adata, key).astype(np.float64)
    delta, delta_sem, disp, score, score_sem = [], [], [], [], []
    for g in groups:
        i = names.index(g)
        if reference == "rest":
            n_ref, m_ref, v_ref = _rest(stats, i)
            in_ref = (codes >= 0) & (codes != i)
        else:
            j = names.index(reference)
            n_ref, m_ref, v_ref = stats.count[j], stats.mean[j], stats.var[j]
            in_ref = codes == j
        d = stats.mean[i] - m_ref  # (dims, genes): sums over genes to disp below
        with np.errstate(invalid="ignore"):
            se = np.sqrt(stats.var[i] / stats.count[i] + v_ref / n_ref)
        shift = emb[codes == i].mean(0) - emb[in_ref].mean(0)
        u = shift / max(np.linalg.norm(shift), 1e-30)
        delta.append(d)
        delta_sem.append(se)
        disp.append(shift)
        score.append(u @ d)
        # Ignores the covariance between dimensions (contributions to a 2-D point).
        score_sem.append(np.sqrt((u[:, None] ** 2 * se**2).sum(0)))
    return {
        "mean": np.asarray(score, dtype=np.float32),
        "sem": np.asarray(score_sem, dtype=np.float32),
        "delta": np.asarray(delta, dtype=np.float32),
        "delta_sem": np.asarray(delta_sem, dtype=np.float32),
        "displacement": np.asarray(disp, dtype=np.float32),
        "n_cells": stats.count[[names.index(g) for g in groups]],
    }


def chosen_groups(
    adata: AnnData, groupby: str, groups: Sequence[str] | None
) -> tuple[pd.Categorical, list[str], list[str]]:
    """``obs[groupby]`` as categories, all group names, and the ``groups`` asked for."""
    cats = acc.categorical(adata, groupby)
    names = [str(c) for c in cats.categories]
    if not names:
        raise ValueError(f"adata.obs[{groupby!r}] has no cell with a value: nothing to rank.")
    chosen = list(names) if groups is None else [str(g) for g in groups]
    unknown = [g for g in chosen if g not in names]
    if unknown:
        raise ValueError(f"groups {unknown} are not groups of {groupby!r}: {names}.")
    return cats, names, chosen


def warn_missing(cats: pd.Categorical, groupby: str, caller: str) -> None:
    """Say how many cells have no group (they are left out)."""
    n_missing = int((np.asarray(cats.codes) < 0).sum())
    if n_missing:
        logg.warning(f"{caller}: {n_missing} cells with no {groupby} are left out.")


@doc_params
def rank_contributions(
    adata: AnnData,
    groupby: str,
    *,
    groups: Sequence[str] | None = None,
    reference: str | None = None,
    view: str = "normed_l2",
    key: str = _keys.DEFAULT_KEY,
    rank_genes_key: str = "rank_genes_groups",
    n_genes: int = 20,
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Rank genes per group by their contribution, or by how they separate groups.

    Without ``reference`` this is the per-cell-type summary of the glass-box UMAP publication:
    per cell, the contribution ``view`` (by default the L2 norm over embedding dimensions,
    normalised to sum to 1), averaged per group with its standard error. When
    ``sc.tl.rank_genes_groups`` was run with the same ``groupby``, the overlap of each group's
    top ``n_genes`` contributors with its top ``n_genes`` markers (among the genes the model
    used) is added.

    With ``reference`` (``'rest'`` or a group), like :func:`scanpy.tl.rank_genes_groups`: per
    group and gene, the difference between the group's and the reference's mean signed
    contribution (``delta``, per dimension), which sums over genes exactly to the difference of
    their mean positions (``displacement``). Genes are ranked by ``delta`` projected on the
    direction of that displacement: the share of the distance between the two groups each gene
    accounts for (it sums to the distance; ``view`` is not used).

    Cells are streamed in chunks; per-cell contributions need not be stored.

    Parameters
    ----------
    {adata}
    groupby
        Categorical ``obs`` column. Cells with a missing value are left out.
    groups
        Groups to rank (default: all; with ``reference``, all but the reference).
    reference
        ``None``, ``'rest'`` or a group of ``groupby``.
    {view}
    {key}
    rank_genes_key
        Where ``sc.tl.rank_genes_groups`` stored its result.
    n_genes
        How many top contributors and markers to compare.
    key_added
        Default ``key + '_rank_' + groupby``, and with a ``reference`` ``'_vs_' + reference``
        after it, so that a comparison does not replace the all-groups ranking.
    {copy}

    Returns
    -------
    ``adata`` copy if ``copy`` else ``None``; writes ``adata.uns[key_added]`` with ``mean``
    and ``sem`` (arrays, groups x genes: the ranking score and its standard error),
    ``groups``, ``genes``, ``n_cells`` per group, ``params``, without ``reference``
    ``toward`` (groups x genes: each gene's mean signed contribution projected on the
    direction from the mean cell to the group's mean position; positive when the gene moves
    the group to where it lies, negative when it holds it back; it sums over genes to that
    distance) and, when DE markers are
    available, ``marker_overlap`` (DataFrame indexed by group: ``overlap``, ``fraction``,
    ``shared``, ``top_contributors``, ``markers``). With ``reference`` also ``delta`` and
    ``delta_sem`` (groups x dims x genes) and ``displacement`` (groups x dims). Read it with
    :func:`scglassbox.get.rank_contributions_df` or :func:`scglassbox.get.group_contributions`
    (with the same ``reference``).

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata, quiet=True)
    >>> gb.tl.rank_contributions(adata, "bulk_labels", groups=["CD14+ Monocyte"],
    ...                          reference="Dendritic")
    >>> gb.get.rank_contributions_df(adata, "bulk_labels", reference="Dendritic")  # doctest: +SKIP
    """
    out_key = _keys.check_key_added(key_added or _keys.rank_key(key, groupby, reference))
    genes = acc.gene_names(adata, key)
    parse_view(view, acc.embedding(adata, key).shape[1])
    cats, names, chosen = chosen_groups(adata, groupby, groups)
    if reference is not None and reference != "rest" and reference not in names:
        raise ValueError(f"reference={reference!r} is not 'rest' or a group of {groupby!r}.")
    if reference is not None:
        chosen = [g for g in chosen if g != reference]
        if not chosen:
            raise ValueError("no group left to compare with the reference.")
    warn_missing(cats, groupby, "rank_contributions")
    if reference is None:
        stats, toward = view_stats_and_toward(adata, key, np.asarray(cats.codes), len(names), view)
        idx = [names.index(g) for g in chosen]
        result = {
            "mean": stats.mean[idx].astype(np.float32),
            "sem": stats.sem[idx].astype(np.float32),
            "toward": toward[idx].astype(np.float32),
            "n_cells": stats.count[idx],
        }
    else:
        result = _differential(adata, key, cats, chosen, reference)
    # Arrays plus name arrays, not DataFrames with group columns: group names such as
    # "CD4+/CD25 T Reg" hold '/', which h5ad and zarr refuse as keys.
    result.update({
        "params": {"groupby": groupby, "view": view, "key": key, "n_genes": int(n_genes),
                   "reference": "none" if reference is None else reference},
        "groups": np.asarray(chosen, dtype=str),
        "genes": genes,
    })  # fmt: skip
    mean_df = pd.DataFrame(result["mean"].T, index=genes, columns=chosen)
    markers = de_markers(adata, groupby, rank_genes_key, required=False)
    if markers is not None and reference is None:
        top = {g: list(mean_df[g].sort_values(ascending=False).index[:n_genes]) for g in chosen}
        rows = overlap_rows(top, markers, set(genes), n_genes)
        if rows:
            table = pd.DataFrame(rows).set_index("group")
            for col in ("shared", "top_contributors", "markers"):  # lists do not round-trip
                table[col] = table[col].map(", ".join)
            result["marker_overlap"] = table
    if copy:
        adata = adata.copy()
    adata.uns[out_key] = result
    return adata if copy else None
