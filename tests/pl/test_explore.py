"""The Bokeh explorer: its data in Python, and its behaviour in a real headless Chromium.

Browser tests need playwright (``pip install playwright``, no ``playwright install``) and a
Chromium binary: Debian's ``apt-get install chromium`` (``/usr/bin/chromium``) or the path in
``SCGLASSBOX_CHROMIUM``. They are skipped, with the reason, when either is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import sys

import numpy as np
import pytest

from scglassbox import pl
from scglassbox.pl import _read as v

bokeh = pytest.importorskip(
    "bokeh", reason="bokeh is not installed: pip install 'scglassbox[interactive]'"
)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIND_VIEW = """(name) => {
  const model = Bokeh.documents[0].get_model_by_name(name);
  function find(view) {
    if (view.model === model) return view;
    for (const child of (view.child_views ?? [])) { const r = find(child); if (r) return r; }
    return null;
  }
  for (const root of Bokeh.index.roots) { const v = find(root); if (v) return v; }
  return null;
}"""
READY = f"""() => {{
  if (!(window.Bokeh && Bokeh.documents.length > 0)) return false;
  return ({FIND_VIEW})('embedding') !== null;  // views built
}}"""
BARS = """() => {
  const f = Bokeh.documents[0].get_model_by_name('bars');
  const s = f.renderers[0].data_source;
  return {genes: Array.from(s.data.gene), mean: Array.from(s.data.mean),
          lo: Array.from(s.data.lo), title: f.title.text};
}"""
SOURCE = "Bokeh.documents[0].get_model_by_name('embedding').renderers[0].data_source"
SCREEN_XY = f"""([x, y]) => {{
  const v = ({FIND_VIEW})('embedding');
  const r = v.canvas_view.el.getBoundingClientRect();
  const b = v.frame.bbox;
  return {{point: [r.left + v.frame.x_scale.compute(x), r.top + v.frame.y_scale.compute(y)],
           frame: [r.left + b.left, r.top + b.top, b.width, b.height]}};
}}"""


def models(layout):
    return {m.name: m for m in layout.references() if m.name}


def expected_bars(adata, view, genes, mask=None):
    """Mean of ``view`` over the selected cells for the genes sent to the browser."""
    values, _ = v.contribution_view(adata, view, genes=genes)
    values = values if mask is None else values[mask]
    return dict(zip(genes, values.mean(axis=0).astype(float), strict=True))


def check_bars(shown, expected, n_bars=15, rtol=2e-3):
    """Bars are the largest (|mean| for signed views) and their means are right."""
    signed = any(m < 0 for m in expected.values())
    score = {g: abs(m) if signed else m for g, m in expected.items()}
    assert len(shown["genes"]) == min(n_bars, len(expected))
    scale = max(abs(m) for m in expected.values())
    for g, m in zip(shown["genes"], shown["mean"], strict=True):
        assert m == pytest.approx(expected[g], rel=rtol, abs=rtol * scale), g
    others = [score[g] for g in expected if g not in shown["genes"]]
    if others:
        assert min(score[g] for g in shown["genes"]) >= max(others) - rtol * scale
    # first gene in the list is drawn at the bottom: the largest is last
    assert score[shown["genes"][-1]] == pytest.approx(max(score.values()), rel=rtol)


# ---------------------------------------------------------------- Python side


@pytest.fixture(scope="module")
def layout(pbmc_gb):
    return pl.explore(pbmc_gb, groupby="bulk_labels")


def test_layout(pbmc_gb, layout):
    m = models(layout)
    for name in ("embedding", "bars", "color_by", "feature", "view", "legend", "colorbar"):
        assert name in m, name
    assert m["embedding"].output_backend == "webgl"
    assert m["color_by"].labels == ["Group", "Feature", "Top feature"]
    assert m["view"].labels == ["L2", "normed L2", "Dim 1", "Dim 2"]
    tools = {type(t).__name__ for t in m["embedding"].tools}
    assert {"BoxSelectTool", "LassoSelectTool", "HoverTool"} <= tools
    # sent: the 30 genes with the largest mean L2 (in that order), then each group's top 3
    # and the 10 most frequent top features
    values, names = v.contribution_view(pbmc_gb, "l2")
    top = list(names[np.argsort(-values.mean(axis=0), kind="stable")[:30]])
    sent = m["feature"].completions
    assert sent[:30] == top
    assert m["feature"].value == top[0]
    labels = pbmc_gb.obs["bulk_labels"].to_numpy()
    for g in pbmc_gb.obs["bulk_labels"].cat.categories:
        group_top = names[np.argsort(-values[labels == g].mean(axis=0), kind="stable")[:3]]
        assert set(group_top) <= set(sent), g
    genes, counts = np.unique(names[values.argmax(axis=1)], return_counts=True)
    assert set(genes[np.argsort(-counts, kind="stable")[:10]]) <= set(sent)
    assert len(sent) == len(set(sent))


def test_data_sent(pbmc_gb, layout):
    m = models(layout)
    src = m["embedding"].renderers[0].data_source
    np.testing.assert_allclose(src.data["x"], pbmc_gb.obsm["X_glassbox_umap"][:, 0])
    assert list(src.data["cell"]) == list(pbmc_gb.obs_names)
    cats = list(pbmc_gb.obs["bulk_labels"].cat.categories)
    assert [cats[c] for c in src.data["grp"]] == list(pbmc_gb.obs["bulk_labels"])
    # signed contributions travel as int16 with a scale per gene; precise to 1/32767
    cb = next(c for c in layout.select({"type": bokeh.models.CustomJS}) if "bars" in c.args)
    meta, cdata = cb.args["meta"], cb.args["cdata"].data
    genes, K = meta["genes"], meta["K"]
    assert cdata["d0"].dtype == np.int16 and cdata["d0"].shape == (pbmc_gb.n_obs * K,)
    scale = np.asarray(meta["scale"]).reshape(2, K)
    for d in range(2):
        ref, _ = v.contribution_view(pbmc_gb, f"dim{d + 1}", genes=genes)
        got = cdata[f"d{d}"].reshape(-1, K) * scale[d]
        np.testing.assert_allclose(got, ref, atol=float(np.abs(ref).max()) / 32767 * 0.51)
    # expression values for the hover text: int16 with scale and offset per gene
    x = np.asarray(pbmc_gb[:, genes].X)
    vals = cb.args["vals"].data["v"].reshape(-1, K) * np.asarray(meta["vscale"])
    vals = vals + np.asarray(meta["voffset"])
    np.testing.assert_allclose(vals, x, atol=float(np.ptp(x, axis=0).max()) / 65534 * 1.01)
    # initial bars: all cells, L2
    bars = m["bars"].renderers[0].data_source.data
    shown = {"genes": bars["gene"], "mean": bars["mean"]}
    check_bars(shown, expected_bars(pbmc_gb, "l2", genes))
    assert m["bars"].title.text.endswith(f"all {pbmc_gb.n_obs} cells")


def test_options(pbmc_gb):
    lay = pl.explore(pbmc_gb, max_cells=200, n_genes=5, n_top=1, genes=["CD79A"], n_bars=4)
    m = models(lay)
    src = m["embedding"].renderers[0].data_source
    assert len(src.data["x"]) == 200
    assert set(src.data["cell"]) <= set(pbmc_gb.obs_names)
    sent = m["feature"].completions
    assert 6 <= len(sent) <= 7 and sent[-1] == "CD79A"  # + the top feature if not in the 5
    assert len(m["bars"].renderers[0].data_source.data["gene"]) == 4
    assert "200 of 700 cells" in m["embedding"].title.text
    assert set(src.data["grp"]) == {0}  # no groupby: one group
    with pytest.raises(KeyError, match="NOTAGENE"):
        pl.explore(pbmc_gb, genes=["NOTAGENE"])
    with pytest.raises(ValueError, match="n_genes"):
        pl.explore(pbmc_gb, n_genes=0)


def test_missing_bokeh(pbmc_gb, monkeypatch):
    monkeypatch.setitem(sys.modules, "bokeh", None)
    with pytest.raises(ImportError, match=r"pip install 'scglassbox\[interactive\]'"):
        pl.explore(pbmc_gb)


def test_no_side_effects(pbmc_gb):
    from .conftest import assert_same, snapshot

    before = snapshot(pbmc_gb)
    pl.explore(pbmc_gb, groupby="louvain")
    assert_same(before, snapshot(pbmc_gb))


def test_save_html(layout, tmp_path):
    path = pl.save_html(layout, tmp_path / "explorer.html", title="PBMC")
    html = path.read_text()
    assert "<title>PBMC</title>" in html
    assert "cdn.bokeh.org" not in html  # BokehJS is inlined: works offline
    assert html.count("<script") >= 2
    assert path.stat().st_size < 5e6


# ---------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright import sync_api
    except ImportError as e:
        pytest.skip(f"playwright is not installed ({e}): pip install playwright")
    exe = os.environ.get("SCGLASSBOX_CHROMIUM") or shutil.which("chromium")
    exe = exe or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
    if exe is None:
        pytest.skip("no Chromium binary: apt-get install chromium (or set SCGLASSBOX_CHROMIUM)")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def html(layout, tmp_path_factory):
    return pl.save_html(layout, tmp_path_factory.mktemp("explore") / "explorer.html")


@pytest.fixture
def page(browser, html):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(html.as_uri())
    page.wait_for_function(READY, timeout=60_000)
    page.wait_for_timeout(300)
    yield page
    assert errors == [], errors
    page.close()


def wait_title(page, text):
    page.wait_for_function(
        "(t) => Bokeh.documents[0].get_model_by_name('bars').title.text.includes(t)",
        arg=text,
        timeout=10_000,
    )


def test_browser_controls(page):
    for name in ["Group", "Feature", "Top feature", "L2", "normed L2", "Dim 1", "Dim 2"]:
        assert page.get_by_role("button", name=name, exact=True).count() == 1, name
    for title in ["Box Select", "Lasso Select", "Hover"]:
        assert page.locator(f'[title="{title}"]').count() == 1, title
    assert page.locator("input").count() == 1  # the feature autocomplete
    assert page.evaluate(BARS)["title"].endswith("all 700 cells")


def test_browser_selection_changes_bars(page, pbmc_gb, layout):
    genes = models(layout)["feature"].completions
    before = page.evaluate(BARS)
    mask = (pbmc_gb.obs["bulk_labels"] == "CD19+ B").to_numpy()
    idx = np.flatnonzero(mask).tolist()
    page.evaluate(f"(idx) => {{ {SOURCE}.selected.indices = idx; }}", idx)
    wait_title(page, f"{len(idx)} selected cells")
    after = page.evaluate(BARS)
    assert after["genes"] != before["genes"]
    check_bars(after, expected_bars(pbmc_gb, "l2", genes, mask))
    # signed view over the same selection
    page.get_by_role("button", name="Dim 1", exact=True).click()
    wait_title(page, "dim 1")
    check_bars(page.evaluate(BARS), expected_bars(pbmc_gb, "dim1", genes, mask))
    page.get_by_role("button", name="normed L2", exact=True).click()
    wait_title(page, "normed L2")
    check_bars(page.evaluate(BARS), expected_bars(pbmc_gb, "normed_l2", genes, mask))
    # nothing selected: all cells again
    page.evaluate(f"() => {{ {SOURCE}.selected.indices = []; }}")
    wait_title(page, "all 700 cells")
    check_bars(page.evaluate(BARS), expected_bars(pbmc_gb, "normed_l2", genes))


def test_browser_box_select_drag(page, pbmc_gb):
    page.locator('[title="Box Select"]').click()
    geo = page.evaluate(SCREEN_XY, [0.0, 0.0])
    left, top, width, height = geo["frame"]
    page.mouse.move(left + 0.5 * width, top + 0.05 * height)
    page.mouse.down()
    page.mouse.move(left + 0.98 * width, top + 0.6 * height, steps=5)
    page.mouse.up()
    page.wait_for_function(f"() => {SOURCE}.selected.indices.length > 0", timeout=10_000)
    idx = page.evaluate(f"() => Array.from({SOURCE}.selected.indices)")
    wait_title(page, f"{len(idx)} selected cells")
    assert 0 < len(idx) < pbmc_gb.n_obs
    # the box selected cells in the upper right of the plot
    emb = pbmc_gb.obsm["X_glassbox_umap"][idx]
    x0, x1 = page.evaluate(
        "() => { const f = Bokeh.documents[0].get_model_by_name('embedding');"
        " return [f.x_range.start, f.x_range.end]; }"
    )
    assert (emb[:, 0] >= x0 + 0.45 * (x1 - x0)).all()


def test_browser_colour_and_hover(page, pbmc_gb, layout):
    gene = models(layout)["feature"].completions[3]
    page.get_by_role("button", name="Feature", exact=True).click()
    page.evaluate(f"() => {{ Bokeh.documents[0].get_model_by_name('feature').value = '{gene}'; }}")
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('colorbar').visible", timeout=10_000
    )
    fcon = np.asarray(page.evaluate(f"() => Array.from({SOURCE}.data.fcon)"))
    ref, _ = v.contribution_view(pbmc_gb, "l2", genes=[gene])
    np.testing.assert_allclose(fcon, ref[:, 0], rtol=1e-3, atol=1e-4 * ref.max())
    legend = page.evaluate("() => Bokeh.documents[0].get_model_by_name('legend').text")
    assert gene in legend
    # hover the first cell: its name, group, and the picked gene's value and contribution
    xy = pbmc_gb.obsm["X_glassbox_umap"][0].astype(float).tolist()
    x, y = page.evaluate(SCREEN_XY, xy)["point"]
    page.mouse.move(x, y)
    tip = page.locator(".bk-tooltip-content").first
    tip.wait_for(timeout=10_000)
    # several cells may overlap under the mouse: read the entry of the first cell
    entries = [e for e in tip.inner_text().split("cell:") if e.strip()]
    (entry,) = [e for e in entries if e.split()[0] == pbmc_gb.obs_names[0]]
    lines = dict(ln.split(":\t") for ln in entry.strip().splitlines()[1:])
    assert lines["bulk_labels"] == str(pbmc_gb.obs["bulk_labels"].iloc[0])
    assert float(lines[f"{gene} value"]) == pytest.approx(
        float(pbmc_gb[:, gene].X[0, 0]), abs=0.006
    )
    assert float(lines[f"{gene} L2 contribution"]) == pytest.approx(ref[0, 0], abs=2e-4)
    # top feature colouring shows its legend and hides the colour bar
    page.get_by_role("button", name="Top feature", exact=True).click()
    page.wait_for_function(
        "() => !Bokeh.documents[0].get_model_by_name('colorbar').visible", timeout=10_000
    )
    legend = page.evaluate("() => Bokeh.documents[0].get_model_by_name('legend').text")
    assert "top feature" in legend and "other" in legend


def test_every_modelled_gene_is_sent_while_small(pbmc_gb, layout):
    sent = models(layout)["feature"].completions
    modelled = list(pbmc_gb.uns["glassbox_umap"]["var_names"])
    assert sorted(sent) == sorted(modelled)  # 700 cells x all genes: well within the budget
    assert {"MS4A1", "FCGR3A", "CD8A"} <= set(sent)  # the examples


STATUS = "() => Bokeh.documents[0].get_model_by_name('feature_status').text"
FEATURE = "() => Bokeh.documents[0].get_model_by_name('feature').value"


def _type_feature(page, text):
    box = page.locator("input").first
    box.fill(text)
    box.press("Enter")


def test_browser_typed_names_are_answered(page, pbmc_gb):
    page.get_by_role("button", name="Feature", exact=True).click()
    _type_feature(page, "ms4a1")  # any case: taken as MS4A1
    page.wait_for_function(f"() => ({FEATURE})() === 'MS4A1'", timeout=10_000)
    legend = page.evaluate("() => Bokeh.documents[0].get_model_by_name('legend').text")
    assert "MS4A1" in legend and page.evaluate(STATUS) == ""
    _type_feature(page, "NOTAGENE<b>")
    page.wait_for_function(f"() => ({STATUS})().includes('not a feature')", timeout=10_000)
    assert "NOTAGENE&lt;b&gt;" in page.evaluate(STATUS)  # escaped: shown as text
    legend = page.evaluate("() => Bokeh.documents[0].get_model_by_name('legend').text")
    assert "MS4A1" in legend  # the plot keeps the last feature


def test_browser_unsent_gene_says_how_to_send_it(browser, pbmc_gb, tmp_path):
    lay = pl.explore(pbmc_gb, groupby="bulk_labels", n_genes=5, n_genes_per_group=0, n_top=1)
    sent = models(lay)["feature"].completions
    modelled = list(pbmc_gb.uns["glassbox_umap"]["var_names"])
    unsent = next(g for g in modelled if g not in sent)
    page = browser.new_page()
    page.goto(pl.save_html(lay, tmp_path / "few.html").as_uri())
    page.wait_for_function(READY, timeout=60_000)
    _type_feature(page, unsent)
    page.wait_for_function(f"() => ({STATUS})().includes('not sent')", timeout=10_000)
    assert f"genes=[&quot;{unsent}&quot;]" in page.evaluate(STATUS)
    page.close()


# ---------------------------------------------------------------- without AnnData, display


def _arrays(adata):
    """The fit's contributions, embedding and expression as plain arrays."""
    genes = v.gene_names(adata, "glassbox_umap")
    contrib = np.stack([v.contribution_view(adata, f"dim{d + 1}")[0] for d in range(2)], axis=1)
    emb = np.asarray(adata.obsm["X_glassbox_umap"])
    return emb, contrib, genes, np.asarray(adata[:, genes].X)


def test_arrays_match_anndata(pbmc_gb, layout):
    emb, contrib, genes, X = _arrays(pbmc_gb)
    lay = pl.explore(
        embedding=emb,
        contributions=contrib,
        feature_names=genes,
        labels=pbmc_gb.obs["bulk_labels"],
        feature_values=X,
    )
    a, b = models(layout), models(lay)
    assert b["feature"].completions == a["feature"].completions
    # same legend entries (the colours differ: the AnnData has its own in uns)
    entries = [re.findall(r"</span>(.*?)</div>", m["legend"].text) for m in (a, b)]
    assert entries[0] == entries[1] and len(entries[0]) == 10
    assert b["legend"].text.startswith("<b>bulk_labels</b>")
    sa, sb = (m["embedding"].renderers[0].data_source.data for m in (a, b))
    for col in ("x", "y", "grp", "top", "total"):
        np.testing.assert_allclose(sb[col], sa[col], rtol=1e-5, atol=1e-6)
    cb_a, cb_b = (
        next(c for c in lay_.select({"type": bokeh.models.CustomJS}) if "bars" in c.args)
        for lay_ in (layout, lay)
    )
    np.testing.assert_array_equal(cb_b.args["cdata"].data["d1"], cb_a.args["cdata"].data["d1"])
    np.testing.assert_array_equal(cb_b.args["vals"].data["v"], cb_a.args["vals"].data["v"])
    assert b["embedding"].title.text == "embedding (700 cells)"
    # no labels, no values: one group, hover values n/a
    lay = pl.explore(embedding=emb, contributions=contrib)
    m = models(lay)
    assert m["feature"].completions[0].startswith("feature ")
    assert set(m["embedding"].renderers[0].data_source.data["grp"]) == {0}


def test_argument_errors(pbmc_gb):
    emb, contrib, genes, _ = _arrays(pbmc_gb)
    with pytest.raises(TypeError, match="either adata or arrays"):
        pl.explore(pbmc_gb, embedding=emb)
    with pytest.raises(ValueError, match="embedding= and contributions="):
        pl.explore(embedding=emb)
    with pytest.raises(TypeError, match="labels="):
        pl.explore(embedding=emb, contributions=contrib, groupby="x")
    with pytest.raises(ValueError, match="feature_names"):
        pl.explore(embedding=emb, contributions=contrib, feature_names=genes[:3])
    with pytest.raises(ValueError, match="labels"):
        pl.explore(embedding=emb, contributions=contrib, labels=[0, 1])
    with pytest.raises(ValueError, match="feature_values"):
        pl.explore(embedding=emb, contributions=contrib, feature_values=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        pl.explore(embedding=emb, contributions=contrib[:, 0])


def test_show_in_notebook(pbmc_gb, monkeypatch):
    """In a notebook, explore displays itself (as sc.pl plots do) unless show=False."""
    import scanpy as sc

    from scglassbox.pl import _explore

    shown = []
    monkeypatch.setattr(_explore, "_show", shown.append)
    kw = {"max_cells": 50, "n_genes": 3}
    assert isinstance(pl.explore(pbmc_gb, **kw), bokeh.models.LayoutDOM)  # not a notebook
    assert shown == []
    monkeypatch.setattr(_explore, "_in_notebook", lambda: True)
    assert pl.explore(pbmc_gb, **kw) is None
    assert len(shown) == 1 and shown[0].name == "scglassbox_explorer"
    assert isinstance(pl.explore(pbmc_gb, show=False, **kw), bokeh.models.LayoutDOM)
    autoshow = sc.settings.autoshow
    sc.settings.autoshow = False
    try:
        assert pl.explore(pbmc_gb, **kw) is not None
        assert pl.explore(pbmc_gb, show=True, **kw) is None
    finally:
        sc.settings.autoshow = autoshow
    assert len(shown) == 2
    with pytest.raises(TypeError, match="show=False"):
        pl.save_html(None, "x.html")


def test_show_publishes_notebook_output(pbmc_gb, monkeypatch):
    """_show loads BokehJS once (output_notebook) and publishes the layout to the notebook."""
    import IPython.display
    from bokeh.io import reset_output

    from scglassbox.pl import _explore

    published = []
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data, *a, **k:
                        published.append(data))  # fmt: skip
    monkeypatch.setattr(_explore, "_in_notebook", lambda: True)
    try:
        assert pl.explore(pbmc_gb, max_cells=50, n_genes=3) is None
    finally:
        reset_output()
    mimes = {k for d in published for k in d}
    assert "application/vnd.bokehjs_exec.v0+json" in mimes, mimes


# ---------------------------------------------------------------- names are text, not HTML

PAYLOAD = "<img src=x onerror=document.title='PWNED'>"


def test_browser_names_are_escaped(browser, pbmc_gb, tmp_path):
    """Group, gene, column and page names holding markup show as text; no script runs."""
    emb, contrib, genes, X = _arrays(pbmc_gb)
    genes = genes.copy().astype(object)
    order = np.argsort(-np.sqrt((contrib**2).sum(axis=1)).mean(axis=0))
    genes[order[0]] = PAYLOAD.replace("PWNED", "PWNED-gene")  # the top gene: in every view
    genes[order[1]] = "a&b <i>not italic</i>"
    labels = pbmc_gb.obs["bulk_labels"].astype(str).to_numpy().copy()
    labels[labels == "CD14+ Monocyte"] = PAYLOAD
    import pandas as pd

    labels = pd.Series(labels, name=PAYLOAD.replace("PWNED", "PWNED-column"))
    lay = pl.explore(
        embedding=emb,
        contributions=contrib,
        feature_names=genes.astype(str),
        labels=labels,
        feature_values=X,
    )
    path = pl.save_html(lay, tmp_path / "evil.html", title=PAYLOAD.replace("PWNED", "PWNED-t"))
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_function(READY, timeout=60_000)
    legend = "() => Bokeh.documents[0].get_model_by_name('legend').text"
    # every colouring, hover over a payload cell, a selection
    page.get_by_role("button", name="Top feature", exact=True).click()
    page.wait_for_function(f"() => ({legend})().includes('top feature')", timeout=10_000)
    page.get_by_role("button", name="Feature", exact=True).click()
    page.wait_for_function(
        "() => Bokeh.documents[0].get_model_by_name('colorbar').visible", timeout=10_000
    )
    assert "PWNED-gene" in page.evaluate(legend)  # escaped markup, shown as text
    page.get_by_role("button", name="Group", exact=True).click()
    page.wait_for_function(f"() => ({legend})().includes('CD19+ B')", timeout=10_000)
    cell = int(np.flatnonzero(labels.to_numpy() == PAYLOAD)[0])
    x, y = page.evaluate(SCREEN_XY, emb[cell].astype(float).tolist())["point"]
    page.mouse.move(x, y)
    page.locator(".bk-tooltip-content").first.wait_for(timeout=10_000)
    tip = page.locator(".bk-tooltip-content").first.inner_text()
    page.evaluate(f"() => {{ {SOURCE}.selected.indices = [{cell}]; }}")
    wait_title(page, "1 selected cells")
    page.wait_for_timeout(500)  # time for an injected <img> to fail loading and fire onerror
    # no onerror ran (each would set the title to its PWNED-...); the page title is text
    assert page.title() == PAYLOAD.replace("PWNED", "PWNED-t")
    assert page.locator('img[src="x"]').count() == 0
    # the names appear literally
    assert PAYLOAD in tip and PAYLOAD.replace("PWNED", "PWNED-column") in tip
    assert page.get_by_text(PAYLOAD, exact=True).count() >= 1  # the legend entry
    assert page.get_by_text(PAYLOAD.replace("PWNED", "PWNED-column")).count() >= 1
    page.get_by_role("button", name="Top feature", exact=True).click()
    page.wait_for_function(f"() => ({legend})().includes('top feature')", timeout=10_000)
    assert page.get_by_text(PAYLOAD.replace("PWNED", "PWNED-gene"), exact=True).count() >= 1
    assert page.get_by_text("a&b <i>not italic</i>", exact=True).count() >= 1
    assert page.title() == PAYLOAD.replace("PWNED", "PWNED-t")
    assert errors == [], errors
    page.close()
