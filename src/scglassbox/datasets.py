"""Seeded synthetic data with planted marker genes (no downloads, ever)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from ._validation import check_int


def _counts(rng: np.random.Generator, mu: np.ndarray, dispersion: float = 5.0) -> np.ndarray:
    """Negative-binomial counts of mean ``mu`` (a gamma-Poisson mixture), float32."""
    return rng.poisson(rng.gamma(dispersion, mu / dispersion)).astype(np.float32)


def synthetic_scrna(
    n_obs: int = 5000,
    n_vars: int = 2000,
    *,
    n_types: int = 8,
    n_markers: int = 20,
    fold_change: float = 6.0,
    n_batches: int = 1,
    batch_effect: float = 1.2,
    batch_share: float = 0.5,
    seed: int = 0,
) -> ad.AnnData:
    """Simulate an scRNA-seq-like count matrix with known marker genes per cell type.

    Each type has a negative-binomial expression profile; its ``n_markers`` planted markers are
    ``fold_change`` times more expressed in that type than elsewhere. Library sizes vary
    log-normally between cells, and each type has a continuous within-type gradient.

    Parameters
    ----------
    n_obs
        Number of cells.
    n_vars
        Number of genes (must be at least ``n_types * n_markers``).
    n_types
        Number of cell types.
    n_markers
        Planted marker genes per type.
    fold_change
        Up-regulation of a marker in its own type.
    n_batches
        Number of batches (samples, donors). With more than one, each cell belongs to a
        batch, and in each batch a random ``batch_share`` of the genes is shifted by a
        log-fold change drawn from ``N(0, batch_effect)`` per batch and gene: the same for
        every cell type, as a technical effect is. ``n_batches=1`` gives exactly the data of
        earlier versions for the same seed.
    batch_effect
        Standard deviation of the per-batch log-fold changes.
    batch_share
        Share of the genes that a batch effect touches.
    seed
        Random seed; the same seed gives the same data.

    Returns
    -------
    Raw counts (CSR, float32) with ``obs['cell_type']`` and ``var['marker_of']`` (the type a
    gene marks, or ``'none'``); ``uns['planted_markers']`` maps each type to its genes. With
    batches also ``obs['batch']`` and ``var['batch_affected']`` (a boolean).
    """
    if n_vars < n_types * n_markers:
        raise ValueError(f"n_vars ({n_vars}) must be >= n_types * n_markers.")
    n_batches = check_int(n_batches, "n_batches", min=1)
    if not 0.0 <= batch_share <= 1.0 or not batch_effect >= 0.0:
        raise ValueError("batch_share must lie in [0, 1] and batch_effect must be >= 0.")
    rng = np.random.default_rng(seed)
    types = [f"type_{i}" for i in range(n_types)]
    labels = rng.integers(0, n_types, size=n_obs)
    base = rng.gamma(0.6, 2.0, size=n_vars)  # per-gene baseline mean
    profiles = np.tile(base, (n_types, 1)) * rng.lognormal(0.0, 0.25, size=(n_types, n_vars))
    marker_of = np.full(n_vars, "none", dtype=object)
    genes = rng.permutation(n_vars)
    for t in range(n_types):
        idx = genes[t * n_markers : (t + 1) * n_markers]
        profiles[t, idx] = np.maximum(base[idx], 0.5) * fold_change
        marker_of[idx] = types[t]
    # Each type varies continuously along a few latent programmes, so neighbourhoods have
    # structure beyond sampling noise (as real cell states do).
    n_latent = 3
    affected = rng.random((n_types, n_latent, n_vars)) < 0.15
    programme = rng.normal(0.0, 1.5, size=(n_types, n_latent, n_vars)) * affected
    position = rng.uniform(-1.0, 1.0, size=(n_obs, n_latent))
    log_mu = np.log(profiles[labels]) + np.einsum("nl,nlg->ng", position, programme[labels])
    library = rng.lognormal(0.0, 0.35, size=n_obs)[:, None]
    batch = affected_genes = None
    if n_batches > 1:  # drawn from a stream of its own: one batch leaves the data unchanged
        brng = np.random.default_rng([seed, n_batches])
        batch = brng.integers(0, n_batches, size=n_obs)
        affected_genes = brng.random(n_vars) < batch_share
        shift = brng.normal(0.0, batch_effect, size=(n_batches, n_vars)) * affected_genes
        log_mu = log_mu + shift[batch]
    counts = _counts(rng, np.exp(log_mu) * library)
    var_names = [f"gene_{i}" for i in range(n_vars)]
    adata = ad.AnnData(
        X=sparse.csr_matrix(counts),
        obs=pd.DataFrame(
            {"cell_type": pd.Categorical([types[i] for i in labels], categories=types)},
            index=[f"cell_{i}" for i in range(n_obs)],
        ),
        var=pd.DataFrame({"marker_of": pd.Categorical(marker_of)}, index=var_names),
    )
    if batch is not None:
        names = [f"batch_{i}" for i in range(n_batches)]
        adata.obs["batch"] = pd.Categorical([names[i] for i in batch], categories=names)
        adata.var["batch_affected"] = affected_genes
    adata.uns["planted_markers"] = {
        t: np.asarray([var_names[g] for g in np.flatnonzero(marker_of == t)]) for t in types
    }
    return adata


def synthetic_trajectory(
    n_obs: int = 5000,
    n_vars: int = 2000,
    *,
    n_branches: int = 3,
    trunk_share: float = 0.25,
    programme_share: float = 0.15,
    seed: int = 0,
) -> ad.AnnData:
    """Simulate counts of cells along a branching trajectory (differentiation from a root).

    A trunk runs from the root to a branch point, where ``n_branches`` lineages start. Each
    segment (the trunk and every branch) moves a random ``programme_share`` share of the
    genes by log-fold changes drawn from ``N(0, 1.5)``, in proportion to how far a cell has
    travelled along it, so expression changes continuously from the root to every tip: no
    clusters, one connected, branched manifold (the shape that differentiation data takes).
    Library sizes and counts are drawn as in :func:`synthetic_scrna`.

    Parameters
    ----------
    n_obs
        Number of cells.
    n_vars
        Number of genes.
    n_branches
        Number of lineages leaving the branch point (at least 2).
    trunk_share
        Share of the cells on the trunk; the others are spread evenly over the branches.
    programme_share
        Share of the genes that each segment's programme moves, in (0, 1].
    seed
        Random seed; the same seed gives the same data.

    Returns
    -------
    Raw counts (CSR, float32) with ``obs['branch']`` (``'trunk'`` or ``'branch_<i>'``) and
    ``obs['pseudotime']`` (0 at the root, 1 at the branch point, 2 at the tips).
    """
    n_obs = check_int(n_obs, "n_obs", min=1)
    n_vars = check_int(n_vars, "n_vars", min=1)
    n_branches = check_int(n_branches, "n_branches", min=2)
    if not 0.0 < trunk_share < 1.0:
        raise ValueError(f"trunk_share must lie in (0, 1), got {trunk_share!r}.")
    if not 0.0 < programme_share <= 1.0:
        raise ValueError(f"programme_share must lie in (0, 1], got {programme_share!r}.")
    rng = np.random.default_rng(seed)
    segments = n_branches + 1  # 0: the trunk
    base = np.log(rng.gamma(0.6, 2.0, size=n_vars) + 0.05)
    moved = rng.random((segments, n_vars)) < programme_share
    programme = rng.normal(0.0, 1.5, size=(segments, n_vars)) * moved
    on_trunk = rng.random(n_obs) < trunk_share
    segment = np.where(on_trunk, 0, rng.integers(1, segments, size=n_obs))
    travelled = rng.random(n_obs)  # along the cell's own segment
    # Branch cells have travelled the whole trunk first.
    log_mu = base + np.where(on_trunk, travelled, 1.0)[:, None] * programme[0]
    log_mu += np.where(on_trunk, 0.0, travelled)[:, None] * programme[segment]
    library = rng.lognormal(0.0, 0.35, size=n_obs)[:, None]
    counts = _counts(rng, np.exp(log_mu) * library)
    names = ["trunk", *(f"branch_{i}" for i in range(1, segments))]
    return ad.AnnData(
        X=sparse.csr_matrix(counts),
        obs=pd.DataFrame(
            {
                "branch": pd.Categorical([names[i] for i in segment], categories=names),
                "pseudotime": travelled + (~on_trunk),
            },
            index=[f"cell_{i}" for i in range(n_obs)],
        ),
        var=pd.DataFrame(index=[f"gene_{i}" for i in range(n_vars)]),
    )


def synthetic_citeseq(
    n_obs: int = 3000,
    n_vars: int = 1000,
    *,
    n_proteins: int = 20,
    seed: int = 0,
) -> object:
    """Simulate a CITE-seq-like :class:`mudata.MuData`: RNA counts and surface-protein counts.

    The RNA is :func:`synthetic_scrna` with 6 cell types. ``type_0`` is split into two
    subtypes, ``type_0a`` and ``type_0b``, that differ only in protein (as CD4 and CD8 T cells
    can look alike in RNA): ``prot_0`` is high in ``type_0a``, ``prot_1`` in ``type_0b``.
    Every other type has two marker proteins of its own; the rest of the proteins are
    background. Protein counts are negative binomial around a per-cell background, as
    antibody-derived tags are.

    Parameters
    ----------
    n_obs
        Number of cells.
    n_vars
        Number of genes.
    n_proteins
        Number of proteins (at least 12).
    seed
        Random seed; the same seed gives the same data.

    Returns
    -------
    A MuData with modalities ``'rna'`` and ``'prot'`` (raw counts, CSR and dense float32) and
    ``obs['cell_type']`` (the 7 types, subtypes included) in both and in the MuData;
    ``mod['prot'].var['marker_of']`` names the type a protein marks, or ``'none'``.
    Needs the ``mudata`` package (``pip install mudata``).
    """
    try:
        import mudata as md
    except ImportError as err:  # an optional dependency
        raise ImportError("synthetic_citeseq needs mudata: pip install mudata") from err
    if n_proteins < 12:
        raise ValueError(f"n_proteins must be >= 12, got {n_proteins!r}.")
    rna = synthetic_scrna(n_obs, n_vars, n_types=6, n_markers=20, seed=seed)
    rng = np.random.default_rng([seed, 7])
    base = rna.obs["cell_type"].astype(str).to_numpy()
    split = rng.random(n_obs) < 0.5
    types = np.where(base == "type_0", np.where(split, "type_0a", "type_0b"), base)
    order = ["type_0a", "type_0b", *[f"type_{i}" for i in range(1, 6)]]
    marker_of = np.full(n_proteins, "none", dtype=object)
    marker_of[0], marker_of[1] = "type_0a", "type_0b"
    for i in range(1, 6):
        marker_of[2 * i : 2 * i + 2] = f"type_{i}"
    background = rng.gamma(4.0, 5.0, size=n_proteins)  # per-protein background level
    mu = np.tile(background, (n_obs, 1)) * rng.lognormal(0.0, 0.3, size=(n_obs, 1))
    for t in order:
        mu[np.ix_(types == t, marker_of == t)] *= 12.0
    counts = _counts(rng, mu, dispersion=10.0)
    obs = pd.DataFrame({"cell_type": pd.Categorical(types, categories=order)}, index=rna.obs_names)
    rna.obs = obs.copy()
    prot = ad.AnnData(
        X=counts,
        obs=obs.copy(),
        var=pd.DataFrame(
            {"marker_of": pd.Categorical(marker_of)},
            index=[f"prot_{i}" for i in range(n_proteins)],
        ),
    )
    mdata = md.MuData({"rna": rna, "prot": prot})
    mdata.obs["cell_type"] = obs["cell_type"].to_numpy()
    mdata.obs["cell_type"] = mdata.obs["cell_type"].astype(pd.CategoricalDtype(order))
    return mdata


def pbmc_gene_sets() -> dict[str, list[str]]:
    """A few textbook marker sets of blood immune cells, for examples and tutorials.

    Short and hand-picked (not a curated resource such as MSigDB or PanglaoDB, which
    decoupler reads): cytotoxic granules, MHC class II, B cells, monocytes and T cells.
    Genes a dataset lacks (``pbmc68k_reduced`` has 765) or a model does not use are skipped
    by the functions that read gene sets.

    Returns
    -------
    A dict set name -> gene symbols, for :func:`scglassbox.get.program_contributions` and
    :func:`scglassbox.tl.rank_programs`.
    """
    return {
        "cytotoxic": ["NKG7", "GZMB", "PRF1", "GNLY", "GZMA", "GZMH", "CST7", "CCL5"],
        "MHC-II": ["HLA-DRA", "HLA-DRB1", "HLA-DPA1", "HLA-DPB1", "HLA-DQA1", "HLA-DQB1", "CD74"],
        "B cell": ["CD79A", "CD79B", "MS4A1", "CD19", "BANK1", "CD22"],
        "monocyte": ["CST3", "LYZ", "FCN1", "S100A8", "S100A9", "CD14", "FCGR3A"],
        "T cell": ["CD3D", "CD3E", "CD2", "IL7R", "LCK", "CD247"],
    }


def digits_images() -> ad.AnnData:
    """scikit-learn's handwritten digits (1,797 images of 8 x 8 pixels) as an AnnData.

    Bundled with scikit-learn (no download). ``X`` holds the 64 pixels of each image
    (values 0-16), ``obsm['X_image']`` the same images as ``(n, 1, 8, 8)`` float32 scaled to
    [0, 1] (one channel), and ``obs['digit']`` the label, for
    ``gb.tl.glassbox_umap(adata, use_rep='X_image', encoder='conv')``.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    labels = d.target.astype(str)
    adata = ad.AnnData(
        X=d.data.astype(np.float32),
        obs=pd.DataFrame(
            {"digit": pd.Categorical(labels, categories=[str(i) for i in range(10)])},
            index=[f"digit_{i}" for i in range(len(labels))],
        ),
        var=pd.DataFrame(index=[f"pixel_{i}" for i in range(d.data.shape[1])]),
    )
    adata.obsm["X_image"] = (d.images[:, None] / 16.0).astype(np.float32)
    return adata
