import subprocess
import sys

import numpy as np
import pytest

from scglassbox import _graph


@pytest.mark.parametrize(
    ("spread", "min_dist"), [(1.0, 0.1), (1.0, 0.5), (1.0, 0.0), (2.0, 0.3), (0.5, 0.05)]
)
def test_ab_params_match_umap_learn(spread, min_dist):
    from umap.umap_ import find_ab_params

    want = find_ab_params(spread, min_dist)
    np.testing.assert_allclose(_graph.find_ab_params(spread, min_dist), want, rtol=1e-6)


def test_fit_on_a_graph_does_not_import_umap():
    # umap-learn's import JIT-compiles for seconds; a precomputed graph must not pay for it.
    code = (
        "import sys, numpy as np, scipy.sparse as sp\n"
        "import scglassbox as gb\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.normal(size=(60, 5)).astype('float32')\n"
        "G = sp.random(60, 60, density=0.1, random_state=0, format='csr')\n"
        "G = ((G + G.T) / 2).tocsr()\n"
        "gb.GlassBoxUMAP(epochs=2, quiet=True, random_state=0).fit(X, graph=G)\n"
        "print(sorted(m for m in sys.modules if m == 'umap' or m.startswith('umap.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
