"""Contributions summed over gene sets (programs, pathways): exact, since they are additive."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _keys
from .. import _logging as logg
from .._docs import doc_params
from . import _access as acc

GeneSets = Mapping[str, Sequence[str]] | pd.DataFrame | str | os.PathLike


def read_gmt(path: str | os.PathLike) -> dict[str, list[str]]:
    """Gene sets of a GMT file: one set per line, ``name<TAB>description<TAB>gene...``."""
    sets: dict[str, list[str]] = {}
    for i, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("\t")
        if len(fields) < 3:
            raise ValueError(f"{path}, line {i}: a GMT line needs a name, a description and genes.")
        if fields[0] in sets:
            raise ValueError(f"{path}, line {i}: gene set {fields[0]!r} appears twice.")
        sets[fields[0]] = [g for g in fields[2:] if g]
    return sets


def as_gene_sets(gene_sets: GeneSets) -> dict[str, list[str]]:
    """``gene_sets`` as a dict name -> genes, from a dict, a GMT path or a source/target table."""
    if isinstance(gene_sets, str | os.PathLike):
        return read_gmt(gene_sets)
    if isinstance(gene_sets, pd.DataFrame):
        missing = {"source", "target"} - set(gene_sets.columns)
        if missing:
            raise ValueError(
                f"a gene-set table needs 'source' and 'target' columns (decoupler's layout); "
                f"missing {sorted(missing)}."
            )
        if "weight" in gene_sets.columns:
            logg.info(
                "program_contributions: the 'weight' column is ignored: a weighted sum of "
                "contributions would not split the embedding; each gene counts once."
            )
        grouped = gene_sets.groupby("source", sort=False)["target"]
        return {str(k): [str(g) for g in v] for k, v in grouped}
    if isinstance(gene_sets, Mapping):
        out = {}
        for name, genes in gene_sets.items():
            if isinstance(genes, str):
                raise ValueError(f"gene set {name!r} must be a list of genes, not one string.")
            out[str(name)] = [str(g) for g in genes]
        return out
    raise TypeError(
        "gene_sets must be a dict name -> genes, a path to a GMT file or a DataFrame with "
        f"'source' and 'target' columns, got {type(gene_sets).__name__}."
    )


def membership(
    names: np.ndarray, sets: dict[str, list[str]], overlap: str
) -> tuple[np.ndarray, list[str]]:
    """``(n_features, n_sets + 1)`` weights, each row summing to 1; the last column is 'rest'.

    A gene in ``k`` sets gives ``1/k`` of its contribution to each (``overlap='share'``).
    """
    if overlap not in ("share", "error"):
        raise ValueError(f"overlap must be 'share' or 'error', got {overlap!r}.")
    if not sets:
        raise ValueError("gene_sets holds no gene set.")
    if "rest" in sets:
        raise ValueError("'rest' is the name of what no set holds: rename that gene set.")
    index = pd.Index(names)
    M = np.zeros((len(names), len(sets) + 1), dtype=np.float64)
    empty = []
    for j, (name, genes) in enumerate(sets.items()):
        pos = index.get_indexer(pd.unique(np.asarray(genes, dtype=str)))
        pos = pos[pos >= 0]
        if pos.size == 0:
            empty.append(name)
        M[pos, j] = 1.0
    counts = M[:, :-1].sum(axis=1)
    shared = counts > 1
    if shared.any():
        genes = names[shared][:10].tolist()
        if overlap == "error":
            raise ValueError(
                f"{int(shared.sum())} modelled genes are in more than one set (e.g. {genes}): "
                "a gene counted twice breaks the split. Pass overlap='share' to give each set "
                "an equal part of such a gene's contribution."
            )
        logg.info(
            f"program_contributions: {int(shared.sum())} genes are in several sets "
            f"(e.g. {genes}); each set gets an equal part of their contribution."
        )
    if empty:
        logg.warning(f"program_contributions: no modelled gene in the sets {empty[:10]}.")
    M[shared, :-1] /= counts[shared, None]
    M[:, -1] = counts == 0
    return M, [*sets, "rest"]


@doc_params
def program_contributions(
    adata: AnnData,
    gene_sets: GeneSets,
    *,
    obs: object = None,
    dims: int | Sequence[int] | None = None,
    overlap: str = "share",
    key: str = _keys.DEFAULT_KEY,
) -> tuple[np.ndarray, list[str]]:
    """Per-cell contributions of gene sets (programs, pathways), plus the rest of the genes.

    Contributions are additive, so summing them over a set of genes is exact: each cell's
    coordinates are the sum over the sets and ``'rest'`` (every modelled gene in no set,
    and batch features of ``batch_key``). Streamed from the model chunk by chunk, like
    :func:`contributions`.

    Parameters
    ----------
    {adata}
    gene_sets
        A dict name -> genes; a path to a GMT file; or a DataFrame with ``source`` (set) and
        ``target`` (gene) columns, decoupler's network layout (a ``weight`` column is
        ignored, with a note: a weighted sum is not a split). Genes the model does not use
        are skipped.
    {obs}
    dims
        Embedding dimensions, 0-based (default: all).
    overlap
        A modelled gene in several sets: ``'share'`` gives each set an equal part of its
        contribution (the split stays exact); ``'error'`` refuses.
    {key}

    Returns
    -------
    ``(values, names)``: ``(n_cells, n_dims, n_sets + 1)`` float32 and the set names in that
    order, ``'rest'`` last.

    Examples
    --------
    >>> import numpy as np, scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata, quiet=True)
    >>> sets = {"cytotoxic": ["NKG7", "GZMB", "PRF1", "GNLY"], "MHC-II": ["HLA-DRA", "HLA-DPA1"]}
    >>> values, names = gb.get.program_contributions(adata, sets)
    >>> values.shape, names
    ((700, 2, 3), ['cytotoxic', 'MHC-II', 'rest'])
    >>> bool(np.allclose(values.sum(-1), adata.obsm["X_glassbox_umap"], atol=1e-4))
    True
    """
    from ._contributions import gather

    names = acc.gene_names(adata, key)
    M, set_names = membership(names, as_gene_sets(gene_sets), overlap)
    n_dims = acc.embedding(adata, key).shape[1] if dims is None else np.atleast_1d(dims).size
    out = gather(adata, key, (n_dims, len(set_names)), lambda block: block.astype(np.float64) @ M,
                 "program contributions", obs=obs, dims=dims)  # fmt: skip
    return out, set_names


@doc_params
def rank_programs_df(
    adata: AnnData,
    groupby: str,
    *,
    group: str | Sequence[str] | None = None,
    key: str = _keys.DEFAULT_KEY,
    uns_key: str | None = None,
    include_rest: bool = False,
) -> pd.DataFrame:
    """Tidy per-group program ranking stored by :func:`~scglassbox.tl.rank_programs`.

    Parameters
    ----------
    {adata}
    {ranked}
    {key}
    uns_key
        Read this ``uns`` entry instead of ``key + '_programs_' + groupby``.
    include_rest
        Rank ``'rest'`` (the genes in no set) among the programs. Off by default: it holds
        most genes, so it would top most groups.

    Returns
    -------
    Columns ``group``, ``rank`` (1 = largest ``mean``), ``program``, ``mean``, ``sem``,
    ``toward`` (the set's pull along the line from the mean cell to the group's mean
    position) and ``n_genes`` (modelled genes in the set).

    Examples
    --------
    >>> import scanpy as sc, scglassbox as gb
    >>> adata = sc.datasets.pbmc68k_reduced()
    >>> gb.tl.glassbox_umap(adata, quiet=True)
    >>> gb.tl.rank_programs(adata, "bulk_labels", {"MHC-II": ["HLA-DRA", "HLA-DPA1"]})
    >>> list(gb.get.rank_programs_df(adata, "bulk_labels").columns)
    ['group', 'rank', 'program', 'mean', 'sem', 'toward', 'n_genes']
    """
    ukey = uns_key or _keys.programs_key(key, groupby)
    res = adata.uns.get(ukey)
    if not isinstance(res, Mapping) or "programs" not in res:
        raise KeyError(
            f"adata.uns[{ukey!r}] not found: run gb.tl.rank_programs(adata, {groupby!r}, ...) "
            "first."
        )
    groups, programs = acc.str_array(res["groups"]).tolist(), acc.str_array(res["programs"])
    chosen = groups if group is None else ([group] if isinstance(group, str) else list(group))
    keep = np.arange(programs.size) if include_rest else np.arange(programs.size - 1)
    frames = []
    for g in chosen:
        if g not in groups:
            raise KeyError(f"group {g!r} not in {groups}.")
        i = groups.index(g)
        mean = np.asarray(res["mean"])[i, keep]
        order = keep[np.argsort(-mean, kind="stable")]
        frames.append(pd.DataFrame({
            "group": g, "rank": np.arange(1, order.size + 1), "program": programs[order],
            "mean": np.asarray(res["mean"])[i, order], "sem": np.asarray(res["sem"])[i, order],
            "toward": np.asarray(res["toward"])[i, order],
            "n_genes": np.asarray(res["n_genes"])[order],
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)
