import numpy as np
import pytest
from scipy import sparse

from scglassbox._contributions import exactness

RTOL = 1e-5


@pytest.mark.parametrize("model", ["fitted", "fitted_pca"])
def test_contributions_sum_to_embedding(model, wine, request):
    est = request.getfixturevalue(model)
    X, _ = wine
    C, emb = est.compute_contributions(X, return_embedding=True)
    assert C.shape == (X.shape[0], 2, X.shape[1]) and C.dtype == np.float32
    np.testing.assert_array_equal(emb, est.transform(X))
    assert exactness(emb, C) <= RTOL


def test_pca_contributions_are_per_input_feature(fitted_pca, wine):
    X, _ = wine
    assert fitted_pca.components_.shape == (X.shape[1], 5)
    C = fitted_pca.compute_contributions(X[:10])
    assert C.shape == (10, 2, X.shape[1])
    # The same contributions as the Jacobian w.r.t. the PCA scores, pulled back by hand.
    import torch

    from scglassbox._contributions import jacobian

    centred = X[:10] - fitted_pca.mean_
    _, jac = jacobian(fitted_pca.encoder_, torch.from_numpy(centred @ fitted_pca.components_))
    manual = (jac.numpy() @ fitted_pca.components_.T) * centred[:, None, :]
    np.testing.assert_allclose(C, manual, rtol=1e-4, atol=1e-6)


def test_reductions(fitted, wine):
    X, _ = wine
    C = fitted.compute_contributions(X)
    l2 = fitted.compute_contributions(X, reduction="l2")
    np.testing.assert_allclose(l2, np.linalg.norm(C, axis=1), rtol=1e-5, atol=1e-7)
    normed = fitted.compute_contributions(X, reduction="normed_l2")
    np.testing.assert_allclose(normed.sum(axis=1), 1.0, rtol=1e-5)
    assert (normed >= 0).all()
    with pytest.raises(ValueError, match="reduction must be one of"):
        fitted.compute_contributions(X, reduction="l1")


def test_batches_do_not_change_the_result(fitted, wine):
    X, _ = wine
    whole = fitted.compute_contributions(X, batch_size=1000)
    streamed = fitted.compute_contributions(X, batch_size=7)
    # Only float32 rounding differs (matmul blocking depends on the batch shape).
    np.testing.assert_allclose(whole, streamed, rtol=1e-4, atol=1e-6)


def test_sparse_and_dense_give_the_same_contributions(fitted_pca, wine):
    X, _ = wine
    Xs = X.copy()
    Xs[np.abs(Xs) < 0.5] = 0
    dense = fitted_pca.compute_contributions(Xs)
    for fmt in (sparse.csr_matrix, sparse.csc_matrix):
        np.testing.assert_array_equal(fitted_pca.compute_contributions(fmt(Xs)), dense)
    # Chunks of in-memory CSR are cut from its arrays: several chunks, a short last one,
    # csr_array, and unsorted indices (which take scipy's own slicing) give the same values.
    chunked = fitted_pca.compute_contributions(Xs, batch_size=7)
    shuffled = sparse.csr_matrix(Xs)
    order = np.argsort(-shuffled.indices[shuffled.indptr[0] : shuffled.indptr[1]])
    shuffled.indices[: len(order)] = shuffled.indices[order]
    shuffled.data[: len(order)] = shuffled.data[order]
    shuffled.has_sorted_indices = False
    for Xc in (sparse.csr_matrix(Xs), sparse.csr_array(Xs), shuffled):
        np.testing.assert_array_equal(fitted_pca.compute_contributions(Xc, batch_size=7), chunked)


def test_csr_row_blocks_equal_scipy_slicing():
    from scglassbox._contributions import _row_block

    rng = np.random.default_rng(0)
    X = sparse.random(50, 9, density=0.3, format="csr", random_state=rng, dtype=np.float32)
    for rows in (slice(0, 7), slice(7, 14), slice(49, 50), slice(20, 20)):
        block = _row_block(X, rows)
        assert block.shape == X[rows].shape
        np.testing.assert_array_equal(block.toarray(), X[rows].toarray())


def test_float16_output(fitted, wine):
    X, _ = wine
    C16 = fitted.compute_contributions(X, dtype=np.float16)
    assert C16.dtype == np.float16
    np.testing.assert_allclose(C16, fitted.compute_contributions(X), rtol=1e-2, atol=1e-3)


def test_exactness_is_able_to_fail():
    emb = np.ones((3, 2), dtype=np.float32)
    C = np.full((3, 2, 4), 0.25, dtype=np.float32)
    assert exactness(emb, C) == 0
    C[0, 0, 0] += 1e-3
    assert exactness(emb, C) > RTOL


def _check_gpu_model(est, X, tmp_path):
    """A GPU-trained model: exact on the GPU, the same on a CPU, and after a model file there."""
    import scglassbox as gb

    est.to("cuda")
    C, emb = est.compute_contributions(X, return_embedding=True)
    assert exactness(emb, C) <= RTOL
    cpu = est.to("cpu").transform(X)
    np.testing.assert_allclose(emb, cpu, rtol=1e-4, atol=1e-5)
    # The stored model maps cells on a CPU exactly as the GPU-trained one moved to the CPU.
    back = gb.GlassBoxUMAP.load(est.save(tmp_path / "gpu.npz"))
    np.testing.assert_array_equal(back.transform(X), cpu)
    C_cpu, emb_cpu = back.compute_contributions(X, return_embedding=True)
    assert exactness(emb_cpu, C_cpu) <= RTOL


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU (none on this machine)"
)
@pytest.mark.parametrize(("data", "pca_components"), [("wine", None), ("digits", 10)])
def test_training_and_contributions_on_gpu(wine, tmp_path, data, pca_components):
    """Wine: float32 training; digits (1,797 cells): bfloat16 training, through a PCA."""
    from sklearn.datasets import load_digits

    import scglassbox as gb
    from scglassbox._params import GPU_HIDDEN

    X = wine[0] if data == "wine" else load_digits().data.astype(np.float32)
    est = gb.GlassBoxUMAP(
        random_state=0, epochs=20, accelerator="gpu", quiet=True, pca_components=pca_components
    ).fit(X)
    # The defaults followed the device (the wide network from 1,000 cells up).
    assert est.encoder_.hidden == (GPU_HIDDEN if data == "digits" else (128, 128))
    assert est.precision_ == ("32" if data == "wine" else "bf16")
    _check_gpu_model(est, X, tmp_path)


@pytest.mark.skipif(
    not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU (none on this machine)"
)
def test_routed_training_and_contributions_on_gpu(tmp_path):
    """The routed encoder trained on a GPU (bfloat16), exact there and on a CPU after loading."""
    from sklearn.datasets import load_digits

    import scglassbox as gb

    X = load_digits().data.astype(np.float32)
    est = gb.GlassBoxUMAP(
        encoder="mlp_routed",
        encoder_kwargs={"experts": 4},
        random_state=0,
        epochs=20,
        accelerator="gpu",
        quiet=True,
    ).fit(X)
    _check_gpu_model(est, X, tmp_path)
