"""Per-group rankings of gene programs: the gene ranking, with genes summed into sets."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys
from .._docs import doc_params
from .._views import parse_view
from ..get import _access as acc
from ..get._programs import GeneSets, as_gene_sets, membership
from ._rank import chosen_groups, view_stats_and_toward, warn_missing


@doc_params
def rank_programs(
    adata: AnnData,
    groupby: str,
    gene_sets: GeneSets,
    *,
    groups: Sequence[str] | None = None,
    view: str = "normed_l2",
    overlap: str = "share",
    key: str = _keys.DEFAULT_KEY,
    key_added: str | None = None,
    copy: bool = False,
) -> AnnData | None:
    """Rank gene programs per group by their contribution to the cells' places.

    :func:`~scglassbox.tl.rank_contributions` with genes summed into sets: per cell, each
    set's contribution is the exact sum of its genes'
    (:func:`~scglassbox.get.program_contributions`), and the genes in no set form
    ``'rest'``. The per-cell ``view`` of these ``n_sets + 1`` contributions (by default each
    one's L2 norm over embedding dimensions divided by their sum: a set's share of the cell's
    explanation) is averaged per group with its standard error. Cells are streamed in
    chunks; per-cell contributions need not be stored.

    Parameters
    ----------
    {adata}
    groupby
        Categorical ``obs`` column. Cells with a missing value are left out.
    gene_sets
        As for :func:`~scglassbox.get.program_contributions`: a dict name -> genes, a GMT
        path, or a ``source``/``target`` table (decoupler's network layout).
    groups
        Groups to rank (default: all).
    view
        As for :func:`~scglassbox.tl.rank_contributions`, per set instead of per gene:
        ``'l2'``, ``'normed_l2'`` (shares over the sets and ``'rest'``) or ``'dim1'``, ...
    overlap
        A modelled gene in several sets: ``'share'`` (each set gets an equal part) or
        ``'error'``.
    {key}
    key_added
        Default ``key + '_programs_' + groupby``.
    {copy}

    Returns
    -------
    ``adata`` copy if ``copy`` else ``None``; writes ``adata.uns[key_added]`` with ``mean``,
    ``sem`` and ``toward`` (groups x sets, ``'rest'`` last; ``toward`` is the set's mean signed
    contribution projected on the direction from the mean cell to the group's mean position,
    summing over the sets to that distance), ``groups``, ``programs``, ``n_genes`` (modelled
    genes per set, a shared gene counted by its part), ``gene_sets`` (a ``source``/``target``/
    ``weight`` table of the modelled genes, ``weight`` the part of the gene each set gets),
    ``n_cells`` and ``params``. Read it with :func:`scglassbox.get.rank_programs_df`.

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata, quiet=True)
    >>> sets = gb.datasets.pbmc_gene_sets()
    >>> gb.tl.rank_programs(adata, "bulk_labels", sets)
    >>> gb.get.rank_programs_df(adata, "bulk_labels", group="CD56+ NK").program.iloc[0]
    'cytotoxic'
    """
    out_key = _keys.check_key_added(key_added or _keys.programs_key(key, groupby))
    genes = acc.gene_names(adata, key)
    parse_view(view, acc.embedding(adata, key).shape[1])
    M, programs = membership(genes, as_gene_sets(gene_sets), overlap)
    cats, names, chosen = chosen_groups(adata, groupby, groups)
    warn_missing(cats, groupby, "rank_programs")
    stats, toward = view_stats_and_toward(
        adata, key, np.asarray(cats.codes), len(names), view, combine=M
    )
    idx = [names.index(g) for g in chosen]
    gene_pos, set_pos = np.nonzero(M[:, :-1])
    table = pd.DataFrame({
        "source": np.asarray(programs[:-1], dtype=object)[set_pos],
        "target": genes[gene_pos],
        "weight": M[gene_pos, set_pos].astype(np.float32),
    })  # fmt: skip
    result = {
        "mean": stats.mean[idx].astype(np.float32),
        "sem": stats.sem[idx].astype(np.float32),
        "toward": toward[idx].astype(np.float32),
        "n_cells": stats.count[idx],
        "groups": np.asarray(chosen, dtype=str),
        "programs": np.asarray(programs, dtype=str),
        "n_genes": M.sum(axis=0).astype(np.float32),
        "gene_sets": table,
        "params": {"groupby": groupby, "view": view, "key": key, "overlap": overlap},
    }
    if copy:
        adata = adata.copy()
    adata.uns[out_key] = result
    return adata if copy else None
