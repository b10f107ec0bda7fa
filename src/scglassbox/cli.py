"""Command line: ``scglassbox run in.h5ad -o out.h5ad`` and ``scglassbox demo``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logger = logging.getLogger("scglassbox")


def _summary_png(adata, path: Path, groupby: str | None, key: str) -> None:
    """Embedding (by group) beside the global top-gene ranking."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import scanpy as sc

    from .get import gene_importance_df

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    sc.pl.embedding(adata, basis=key, color=groupby, ax=ax1, show=False, frameon=False)
    ax1.set_title("glass-box UMAP" + (f" by {groupby}" if groupby else ""))
    top = gene_importance_df(adata, key=key).head(20)[::-1]
    ax2.barh(top.index, top["dim1"], label="dim 1", color="#4C72B0")
    ax2.barh(top.index, top["dim2"], left=top["dim1"], label="dim 2", color="#DD8452")
    ax2.set_xlabel("mean |contribution|")
    ax2.set_title("Top genes placing cells")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(
    adata,
    out: Path,
    *,
    groupby: str | None,
    epochs: int | None,
    seed: int,
    key: str,
    quiet: bool,
    png: Path | None,
):
    """Neighbours if missing, fit, contributions, summaries; write ``out`` and a PNG."""
    import scglassbox as gb

    from ._neighbors import ensure_neighbors

    if groupby is not None and groupby not in adata.obs.columns:
        raise SystemExit(f"error: --groupby {groupby!r} is not an obs column.")
    if ensure_neighbors(adata):
        print("No neighbour graph in the input: computed one with scanpy defaults.")
    gb.tl.glassbox_umap(adata, epochs=epochs, random_state=seed, key_added=key, quiet=quiet)
    exact = adata.uns[key]["exactness"]
    if groupby is not None:
        gb.tl.rank_contributions(adata, groupby, key=key)
    out.parent.mkdir(parents=True, exist_ok=True)
    adata.write_h5ad(out)
    png = png or out.with_suffix(".png")
    _summary_png(adata, png, groupby, key)
    print(f"embedding + contributions: {out}")
    print(f"figure:                    {png}")
    print(f"exactness (max relative |sum of contributions - embedding|): {exact:.1e}")
    if groupby is not None:
        top = gb.get.rank_contributions_df(adata, groupby, key=key, n_genes=3)
        for group, rows in top.groupby("group", sort=False):
            print(f"  {group}: {', '.join(rows['gene'])}")
    return adata


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scglassbox`` command."""
    parser = argparse.ArgumentParser(
        prog="scglassbox", description="Glass-box UMAP with exact per-gene contributions."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="fit on an .h5ad file and write the results")
    p_run.add_argument("input", type=Path, help="input .h5ad")
    p_run.add_argument("-o", "--output", type=Path, required=True, help="output .h5ad")
    p_demo = sub.add_parser("demo", help="run on scanpy's bundled pbmc68k_reduced (700 cells)")
    p_demo.add_argument("--outdir", type=Path, default=Path("scglassbox_demo"))
    for p in (p_run, p_demo):
        p.add_argument("--groupby", default=None, help="obs column to summarise genes by")
        p.add_argument("--epochs", type=int, default=None, help="training epochs (default: auto)")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--key-added", default="glassbox_umap")
        p.add_argument("--png", type=Path, default=None, help="summary figure path")
        p.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    for noisy in ("lightning", "numba", "matplotlib", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    import anndata as ad

    if args.command == "demo":
        import scanpy as sc

        adata = sc.datasets.pbmc68k_reduced()
        out = args.outdir / "pbmc68k_glassbox.h5ad"
        groupby = args.groupby or "bulk_labels"
    else:
        if not args.input.exists():
            parser.error(f"input file {args.input} does not exist")
        adata = ad.read_h5ad(args.input)
        out, groupby = args.output, args.groupby
    run(
        adata, out, groupby=groupby, epochs=args.epochs, seed=args.seed, key=args.key_added,
        quiet=args.quiet, png=args.png,
    )  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
