# ruff: noqa: B018, B905, F401, F841, RUF059  (the guide's code is kept as written)
"""The reference package's "Basic Usage" guide, run with only its import line changed.

The code below is the guide's (glass_box_umap 0.1.0, ../shared/reference/), in order; the
one edit is ``from glass_box_umap import GlassBoxUMAP`` ->
``from scglassbox import GlassBoxUMAP`` and ``from glass_box_umap.plotting import`` ->
``from scglassbox.plotting import``. What the notebook would display is captured.
"""

import pytest


@pytest.mark.filterwarnings("ignore:FigureCanvasAgg is non-interactive")
@pytest.mark.filterwarnings("ignore::UserWarning:umap")
def test_reference_basic_usage_guide(capsys, monkeypatch):
    pytest.importorskip("umap")
    pytest.importorskip("pandas")
    pytest.importorskip("bokeh")
    import IPython.display
    import matplotlib
    from bokeh.io import reset_output

    matplotlib.use("Agg")
    published = []  # what a notebook would display
    monkeypatch.setattr(IPython.display, "publish_display_data", lambda data, *a, **k:
                        published.append(data))  # fmt: skip

    # ---- the guide's code, verbatim from here on except the import line ----
    import pandas as pd
    from sklearn.datasets import load_wine

    wine, target = load_wine(as_frame=True, return_X_y=True)
    wine

    import numpy as np
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    X = scaler.fit_transform(wine.values)

    # Make sure mean=0 and std=1 for each feature.
    assert np.isclose(X.mean(axis=0), np.zeros(X.shape)).all()
    assert np.isclose(X.std(axis=0), np.ones(X.shape)).all()

    import matplotlib.pyplot as plt
    from umap import UMAP

    CULTIVAR_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c"]

    umap_embedder = UMAP(random_state=100)
    umap_embedder.fit(X)
    umap_embedding = umap_embedder.transform(X)

    # Sketch up a quick plot
    plt.scatter(umap_embedding[:, 0], umap_embedding[:, 1], c=[CULTIVAR_COLORS[t] for t in target])
    plt.xlabel("UMAP 1")
    plt.ylabel("UMAP 2")
    plt.title("UCI wine embedding colored by cultivar (UMAP)")
    plt.show()

    from scglassbox import GlassBoxUMAP  # the guide: from glass_box_umap import GlassBoxUMAP

    gb_umap_embedder = GlassBoxUMAP(random_state=7, epochs=300, quiet=True)
    gb_umap_embedder.fit(X)
    gb_umap_embedding = gb_umap_embedder.transform(X)

    # Sketch up a quick plot
    plt.scatter(
        gb_umap_embedding[:, 0],
        gb_umap_embedding[:, 1],
        c=[CULTIVAR_COLORS[t] for t in target],
    )
    plt.xlabel("UMAP 1")
    plt.ylabel("UMAP 2")
    plt.title("UCI wine embedding colored by cultivar (Glass Box UMAP)")
    plt.show()

    contributions = gb_umap_embedder.compute_contributions(X)
    print(f"contributions shape: {contributions.shape}")

    x_coord = gb_umap_embedding[0, 0]
    print(f"The first datapoint has x-coordinate {x_coord:.3f}")
    total = 0
    for idx, feature_name in enumerate(wine.columns):
        contribution = contributions[0, 0, idx]
        print(f"{contribution:+.3f} is contributed by {feature_name}")
        total += contribution
    print(f"The individual contributions sum to the x-coordinate: {np.isclose(x_coord, total)}")

    reconstructed = contributions.sum(axis=2)
    is_equivalent = np.allclose(reconstructed, gb_umap_embedding, atol=1e-5)
    print(f"Reconstruction matches embedding: {is_equivalent}")

    fig, ax = plt.subplots(1, 2, figsize=(10, 4), sharex=True, sharey=True)
    for a, Z, title in zip(
        ax,
        [gb_umap_embedding, reconstructed],
        ["Glass Box UMAP embedding", "Reconstructed from feature contributions"],
    ):
        s = a.scatter(Z[:, 0], Z[:, 1], c=[CULTIVAR_COLORS[t] for t in target])
        a.set(xlabel="UMAP 1", ylabel="UMAP 2", title=title)
    plt.show()

    from scglassbox.plotting import (  # the guide: from glass_box_umap.plotting import (
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
    # ---- end of the guide's code ----
    reset_output()
    assert "application/vnd.bokehjs_exec.v0+json" in {k for d in published for k in d}

    out = capsys.readouterr().out
    assert "contributions shape: (178, 2, 13)" in out
    assert "The individual contributions sum to the x-coordinate: True" in out
    assert "Reconstruction matches embedding: True" in out
    plt.close("all")
