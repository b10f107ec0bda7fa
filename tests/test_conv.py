"""Images (n, H, W) and (n, C, H, W), and the convolutional encoder ``encoder="conv"``."""

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.base import clone

import scglassbox as gb
from scglassbox._contributions import exactness
from scglassbox._encoder import GlassBoxConv, build_encoder
from scglassbox._storage import ModelFormatError

#: max |sum of contributions - embedding| / max |embedding| in float32.
EXACT = 1e-6
KW = {"epochs": 3, "random_state": 0, "quiet": True}


@pytest.fixture(scope="module")
def images():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images[:500].astype(np.float32), digits.images[500:560].astype(np.float32)


@pytest.fixture(scope="module")
def two_channels(images):
    train, new = images
    # A second channel unlike the first: the transposed image.
    return tuple(np.stack([x, x.transpose(0, 2, 1)], axis=1) for x in (train, new))


@pytest.fixture(scope="module")
def conv3(images):
    return gb.GlassBoxUMAP(encoder="conv", **KW).fit(images[0])


@pytest.fixture(scope="module")
def conv4(two_channels):
    return gb.GlassBoxUMAP(encoder="conv", **KW).fit(two_channels[0])


def _sum_error(est, X, **kwargs):
    contrib, emb = est.compute_contributions(X, return_embedding=True, **kwargs)
    return contrib, emb, exactness(emb, contrib)


def test_images_hw_are_exact_and_keep_their_shape(conv3, images):
    train, new = images
    assert conv3.input_shape_ == (8, 8) and conv3.n_features_in_ == 64
    assert isinstance(conv3.encoder_, GlassBoxConv)
    assert conv3.encoder_.architecture["input_shape"] == [1, 8, 8]
    for X in (train, new):
        contrib, emb, err = _sum_error(conv3, X)
        assert contrib.shape == (len(X), 2, 8, 8) and contrib.dtype == np.float32
        assert err <= EXACT
        np.testing.assert_array_equal(emb, conv3.transform(X))
    np.testing.assert_array_equal(conv3.transform(train), conv3.embedding_)
    # The baseline is the mean image: its contributions are all zero.
    mean = conv3.mean_.reshape(1, 8, 8)
    assert np.abs(conv3.compute_contributions(mean)).max() == 0


def test_images_chw_are_exact_and_keep_their_shape(conv4, two_channels):
    train, new = two_channels
    assert conv4.input_shape_ == (2, 8, 8) and conv4.n_features_in_ == 128
    for X in (train, new):
        contrib, _, err = _sum_error(conv4, X)
        assert contrib.shape == (len(X), 2, 2, 8, 8)
        assert err <= EXACT
    assert conv4.compute_contributions(new, reduction="l2").shape == (len(new), 2, 8, 8)


def test_chunked_equals_unchunked(conv3, conv4, images, two_channels):
    for est, X in ((conv3, images[1]), (conv4, two_channels[1])):
        whole = est.compute_contributions(X)
        chunked = est.compute_contributions(X, batch_size=7)
        np.testing.assert_allclose(chunked, whole, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            est.transform(X, batch_size=7), est.transform(X), rtol=1e-5, atol=1e-6
        )


def test_reductions_keep_the_image_shape(conv3, images):
    X = images[1]
    l2 = conv3.compute_contributions(X, reduction="l2")
    normed = conv3.compute_contributions(X, reduction="normed_l2")
    assert l2.shape == normed.shape == (len(X), 8, 8)
    full = conv3.compute_contributions(X)
    np.testing.assert_allclose(l2, np.linalg.norm(full, axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(normed.sum(axis=(1, 2)), 1.0, rtol=1e-5)


def test_jacobian_shape_and_contributions(conv3, conv4, images, two_channels):
    for est, X in ((conv3, images[1][:9]), (conv4, two_channels[1][:9])):
        jac = est.compute_jacobian(X)
        assert jac.shape == (9, 2, *X.shape[1:])
        centred = X - est.mean_.reshape(X.shape[1:])
        np.testing.assert_allclose(
            jac * centred[:, None], est.compute_contributions(X), rtol=1e-5, atol=1e-6
        )


def test_conv_contributions_are_gradient_x_input(conv3, images):
    """Without normalisation the encoder is degree-1 homogeneous: true gradients."""
    X = images[1][:6]
    est = conv3
    centred = torch.from_numpy((X - est.mean_.reshape(8, 8)).reshape(6, -1))
    true = torch.stack(
        [torch.autograd.functional.jacobian(est.encoder_, xi[None])[0, :, 0] for xi in centred]
    )
    np.testing.assert_allclose(
        est.compute_jacobian(X), true.numpy().reshape(6, 2, 8, 8), rtol=1e-4, atol=1e-6
    )
    # f(mean + 2 (x - mean)) = 2 f(x)
    doubled = est.mean_.reshape(8, 8) + 2 * (X - est.mean_.reshape(8, 8))
    np.testing.assert_allclose(est.transform(doubled), 2 * est.transform(X), rtol=1e-4, atol=1e-5)


def test_shapes_equivalent_to_the_fitted_one(conv3, images):
    X = images[1][:5]
    # (n, 1, H, W) and flattened rows are the same samples; results follow the input's rank.
    four = X[:, None]
    np.testing.assert_array_equal(conv3.transform(four), conv3.transform(X))
    assert conv3.compute_contributions(four).shape == (5, 2, 1, 8, 8)
    flat = X.reshape(5, -1)
    np.testing.assert_array_equal(conv3.transform(flat), conv3.transform(X))
    assert conv3.compute_contributions(flat).shape == (5, 2, 64)
    assert conv3.compute_jacobian(flat).shape == (5, 2, 64)


def test_torch_tensors(conv3, images):
    train, new = images
    np.testing.assert_array_equal(conv3.transform(torch.from_numpy(new)), conv3.transform(new))
    est = gb.GlassBoxUMAP(encoder="conv", **KW).fit(torch.from_numpy(train))
    np.testing.assert_array_equal(est.embedding_, conv3.embedding_)


def test_save_load_round_trip(conv3, conv4, images, two_channels, tmp_path):
    for est, X in ((conv3, images[1]), (conv4, two_channels[1])):
        back = gb.GlassBoxUMAP.load(est.save(tmp_path / "conv.npz"))
        assert back.input_shape_ == est.input_shape_ and back.encoder == "conv"
        np.testing.assert_array_equal(back.transform(X), est.transform(X))
        np.testing.assert_array_equal(back.compute_contributions(X), est.compute_contributions(X))
        again = gb.GlassBoxUMAP.from_dict(est.to_dict())
        np.testing.assert_array_equal(again.transform(X), est.transform(X))
        assert back == est == again


def test_crafted_input_shape_is_refused(conv3):
    block = conv3.to_dict()
    block["input_shape"] = np.array([9, 9])
    with pytest.raises(ModelFormatError, match="input_shape"):
        gb.GlassBoxUMAP.from_dict(block)
    block = conv3.to_dict()
    block["architecture"]["input_shape"] = np.array([2, 8, 8])
    with pytest.raises(ModelFormatError, match="input_shape"):
        gb.GlassBoxUMAP.from_dict(block)


def test_clone_and_reproducibility(conv3, images):
    c = clone(conv3)
    assert c.get_params() == conv3.get_params() and not hasattr(c, "encoder_")
    again = c.fit(images[0])
    np.testing.assert_array_equal(again.embedding_, conv3.embedding_)
    assert again == conv3
    other = gb.GlassBoxUMAP(encoder="conv", **{**KW, "random_state": 1}).fit(images[0])
    assert not np.array_equal(other.embedding_, conv3.embedding_)


def test_encoder_kwargs_and_alias(images):
    train = images[0][:200]
    est = gb.GlassBoxUMAP(
        encoder_name="default_conv",
        encoder_kwargs={"channels": (4,), "hidden": (16, 16), "norm": True},
        **KW,
    ).fit(train)
    arch = est.encoder_.architecture
    assert (arch["channels"], arch["hidden"], arch["norm"]) == ([4], [16, 16], True)
    assert _sum_error(est, train)[2] <= EXACT  # frozen-scale split, still exact
    with pytest.raises(ValueError, match="unknown keys"):
        gb.GlassBoxUMAP(encoder="conv", encoder_kwargs={"width": 3}, **KW).fit(train)
    with pytest.raises(ValueError, match="channels"):
        gb.GlassBoxUMAP(encoder="conv", encoder_kwargs={"channels": [0]}, **KW).fit(train)
    with pytest.raises(ValueError, match="same setting"):
        gb.GlassBoxUMAP(encoder="mlp", encoder_name="default_conv", **KW).fit(train)


def test_mlp_reads_flattened_images(images):
    train, new = images
    est = gb.GlassBoxUMAP(encoder="mlp", **KW).fit(train)
    contrib, _, err = _sum_error(est, new)
    assert contrib.shape == (len(new), 2, 8, 8) and err <= EXACT
    flat = gb.GlassBoxUMAP(encoder="mlp", **KW).fit(train.reshape(len(train), -1))
    np.testing.assert_array_equal(flat.embedding_, est.embedding_)


def test_bf16_training_runs(images):
    est = gb.GlassBoxUMAP(encoder="conv", precision="bf16", **KW).fit(images[0][:200])
    assert est.precision_ == "bf16" and np.isfinite(est.embedding_).all()
    assert _sum_error(est, images[1])[2] <= EXACT  # weights and contributions are float32


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.zeros(5, np.float32), "got a 1D input"),
        (np.zeros((4, 1, 2, 3, 3), np.float32), "got a 5D input"),
        (np.full((20, 8, 8), np.nan, np.float32), "NaN"),
        (np.full((20, 8, 8), np.inf, np.float32), "infinity"),
    ],
)
def test_invalid_images(X, match):
    with pytest.raises(ValueError, match=match):
        gb.GlassBoxUMAP(encoder="conv", **KW).fit(X)


def test_pca_sparse_and_shape_errors(conv3, images):
    train, new = images
    with pytest.raises(ValueError, match="pca_components=5 needs 2-D input"):
        gb.GlassBoxUMAP(pca_components=5, **KW).fit(train)
    coo = sparse.coo_array(train[:20])  # scipy's n-D sparse arrays
    with pytest.raises(ValueError, match="dense"):
        gb.GlassBoxUMAP(encoder="conv", **KW).fit(coo)
    with pytest.raises(ValueError, match="needs images"):
        gb.GlassBoxUMAP(encoder="conv", **KW).fit(train.reshape(len(train), -1))
    with pytest.raises(ValueError, match=r"fitted on images of shape \(8, 8\)"):
        conv3.transform(new[:, :4, :4])
    with pytest.raises(ValueError, match=r"fitted on images of shape \(8, 8\)"):
        conv3.compute_contributions(np.stack([new, new], axis=1))
    rows = gb.GlassBoxUMAP(encoder="mlp", **KW).fit(train.reshape(len(train), -1))
    with pytest.raises(ValueError, match="fitted on rows of features"):
        rows.transform(new)


def test_build_encoder_shapes():
    net = build_encoder("conv", 3 * 9 * 7, 3, (3, 9, 7), channels=(5, 6, 7))
    x = torch.randn(4, 3 * 9 * 7)
    assert net(x).shape == (4, 3)
    # Each stride-2 convolution halves the sides, rounding up: 9x7 -> 5x4 -> 3x2 -> 2x1.
    assert net.head.n_in == 7 * 2 * 1
    with pytest.raises(ValueError, match="does not hold"):
        build_encoder("conv", 10, 2, (3, 3))
