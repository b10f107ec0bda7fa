import numpy as np
import pytest

import scglassbox as gb


def test_contributions_df(pbmc_fitted):
    df = gb.get.contributions_df(pbmc_fitted, "dim1")
    C = pbmc_fitted.obsm["glassbox_umap_contributions"]
    np.testing.assert_array_equal(df.to_numpy(), C[:, 0, :])
    np.testing.assert_allclose(
        df.sum(axis=1), pbmc_fitted.obsm["X_glassbox_umap"][:, 0], rtol=1e-4, atol=1e-5
    )
    sub = gb.get.contributions_df(pbmc_fitted, genes=["NKG7", "CD79A"])
    assert list(sub.columns) == ["NKG7", "CD79A"]
    with pytest.raises(KeyError, match="not among"):
        gb.get.contributions_df(pbmc_fitted, genes=["NOT_A_GENE"])
    with pytest.raises(ValueError, match="view must be"):
        gb.get.contributions_df(pbmc_fitted, "dim3")


def test_gene_importance_df(pbmc_fitted):
    df = gb.get.gene_importance_df(pbmc_fitted)
    assert list(df.columns) == ["dim1", "dim2", "total"]
    assert df["total"].is_monotonic_decreasing
    assert len(df) == len(pbmc_fitted.uns["glassbox_umap"]["var_names"])


def test_missing_key(pbmc_fitted):
    with pytest.raises(KeyError, match="key_added='other'"):
        gb.get.contributions_df(pbmc_fitted, key="other")
