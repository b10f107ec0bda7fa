import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

import scglassbox as gb
from scglassbox._contributions import exactness
from tests.conftest import make_synthetic

KEY = "glassbox_umap"


@pytest.fixture(scope="module")
def split():
    adata = make_synthetic(n_obs=800, seed=1)
    rng = np.random.default_rng(0)
    is_ref = rng.random(adata.n_obs) < 0.8
    ref, query = adata[is_ref].copy(), adata[~is_ref].copy()
    import scanpy as sc

    sc.pp.pca(ref, n_comps=20, mask_var="highly_variable")
    sc.pp.neighbors(ref)
    gb.tl.glassbox_umap(ref, epochs=40, random_state=0, quiet=True)
    return ref, query


def test_mapping_new_cells(split):
    ref, query = split
    gb.tl.glassbox_transform(query, ref)
    emb = query.obsm[f"X_{KEY}"]
    assert emb.shape == (query.n_obs, 2)
    assert exactness(emb, query.obsm[f"{KEY}_contributions"]) <= 1e-5
    assert query.uns[KEY]["params"]["mapped_from_reference"]
    # Label transfer in the embedding: the query lands near reference cells of its type.
    knn = KNeighborsClassifier(15).fit(ref.obsm[f"X_{KEY}"], ref.obs["cell_type"])
    acc = (knn.predict(emb) == query.obs["cell_type"].to_numpy()).mean()
    assert acc > 0.8


def test_query_in_other_gene_order(split):
    ref, query = split
    shuffled = query[:, np.random.default_rng(1).permutation(query.n_vars)].copy()
    a = gb.tl.glassbox_transform(query, ref, copy=True)
    b = gb.tl.glassbox_transform(shuffled, ref, copy=True)
    np.testing.assert_allclose(a.obsm[f"X_{KEY}"], b.obsm[f"X_{KEY}"], rtol=1e-5, atol=1e-6)


def test_missing_genes(split):
    ref, query = split
    genes = list(ref.uns[KEY]["var_names"])
    lacking = query[:, [g for g in query.var_names if g not in genes[:3]]].copy()
    before = sorted(lacking.obsm)
    with pytest.raises(ValueError, match=r"3 of the model's \d+ genes are missing") as err:
        gb.tl.glassbox_transform(lacking, ref)
    assert all(g in str(err.value) for g in genes[:3])
    assert sorted(lacking.obsm) == before
    gb.tl.glassbox_transform(lacking, ref, missing_genes="zero")
    assert lacking.uns[KEY]["params"]["n_missing_genes"] == 3
    assert exactness(lacking.obsm[f"X_{KEY}"], lacking.obsm[f"{KEY}_contributions"]) <= 1e-5
