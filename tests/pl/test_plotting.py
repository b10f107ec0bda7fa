"""``scglassbox.plotting``: the reference package's guide code runs with only the import changed."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("bokeh", reason="bokeh is not installed: pip install 'scglassbox[interactive]'")

from scglassbox import pl

from .test_explore import BARS, READY, browser, models  # noqa: F401


@pytest.fixture(scope="module")
def wine_fit(fitted):
    """The reference guide's objects: ``wine``, ``target``, ``X``, embedding, contributions."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    wine, target = load_wine(as_frame=True, return_X_y=True)
    X = StandardScaler().fit_transform(wine.values).astype(np.float32)
    emb = fitted.transform(X)
    contributions = fitted.compute_contributions(X)
    return wine, target, X, emb, contributions


def test_reference_guide_code(wine_fit, monkeypatch):
    """The guide's cell, verbatim but for the import, publishes the explorer to a notebook."""
    import IPython.display
    from bokeh.io import reset_output

    published = []
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data, *a, **k:
                        published.append(data))  # fmt: skip
    wine, target, X, gb_umap_embedding, contributions = wine_fit
    try:
        # --- as in glass_box_umap's basic usage guide
        from scglassbox.plotting import (
            output_notebook,
            plot_embedding,
            show,
        )

        output_notebook(hide_banner=True)
        show(
            plot_embedding(
                Z=gb_umap_embedding,
                contributions=contributions,
                group_names=target,
                feature_names=wine.columns,
                feature_values=X,
            )
        )
        # ---
    finally:
        reset_output()
    mimes = {k for d in published for k in d}
    assert "application/vnd.bokehjs_exec.v0+json" in mimes, mimes


def test_plot_embedding_layout(wine_fit):
    from scglassbox.plotting import plot_embedding

    wine, target, X, emb, contributions = wine_fit
    lay = plot_embedding(
        Z=emb, contributions=contributions, group_names=target, feature_names=wine.columns,
        feature_values=X,
    )  # fmt: skip
    m = models(lay)
    # 13 features: all sent, ordered by mean L2 contribution
    l2 = np.sqrt((contributions**2).sum(axis=1)).mean(axis=0)
    assert m["feature"].completions == list(wine.columns[np.argsort(-l2, kind="stable")])
    assert m["legend"].text.startswith("<b>target</b>")  # the Series' name
    src = m["embedding"].renderers[0].data_source.data
    np.testing.assert_array_equal(src["grp"], target.to_numpy())
    np.testing.assert_allclose(src["x"], emb[:, 0])
    assert m["view"].labels == ["L2", "normed L2", "Dim 1", "Dim 2"]
    # explore's options pass through
    lay = plot_embedding(Z=emb, contributions=contributions, n_bars=4, max_cells=100)
    assert len(models(lay)["bars"].renderers[0].data_source.data["gene"]) == 4


def test_plot_embedding_in_browser(wine_fit, browser, tmp_path):  # noqa: F811
    from scglassbox.plotting import plot_embedding

    wine, target, X, emb, contributions = wine_fit
    lay = plot_embedding(
        Z=emb, contributions=contributions, group_names=target, feature_names=wine.columns,
        feature_values=X,
    )  # fmt: skip
    path = pl.save_html(lay, tmp_path / "wine.html", title="wine")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function(READY, timeout=60_000)
    assert page.evaluate(BARS)["title"].endswith("all 178 cells")
    # select cultivar 0: the bars are its mean L2 contributions
    idx = np.flatnonzero(target.to_numpy() == 0).tolist()
    page.evaluate(
        "(idx) => { Bokeh.documents[0].get_model_by_name('embedding')"
        ".renderers[0].data_source.selected.indices = idx; }",
        idx,
    )
    page.wait_for_function(
        "(t) => Bokeh.documents[0].get_model_by_name('bars').title.text.includes(t)",
        arg=f"{len(idx)} selected cells",
        timeout=10_000,
    )
    shown = page.evaluate(BARS)
    l2 = np.sqrt((contributions[idx] ** 2).sum(axis=1)).mean(axis=0)
    expected = dict(zip(wine.columns, l2, strict=True))
    for g, mean in zip(shown["genes"], shown["mean"], strict=True):
        assert mean == pytest.approx(expected[g], rel=2e-3, abs=1e-4)
    assert shown["genes"][-1] == wine.columns[np.argmax(l2)]
    # colouring by a feature works on the arrays too
    page.get_by_role("button", name="Feature", exact=True).click()
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('colorbar').visible", timeout=10_000
    )
    assert errors == [], errors
    page.close()
