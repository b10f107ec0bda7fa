"""Command line: ``scglassbox run in.h5ad -o out.h5ad`` and ``scglassbox demo``.

Every output path and option is checked before any work. Outputs are written to a temporary
file in the target folder and renamed over the target (:func:`os.replace`, atomic on one file
system), so a full disk or Ctrl-C never destroys an existing file (not even the input with
``-o in.h5ad``) nor leaves a partial one. Errors are one line on stderr, no traceback, with
the exit codes of :data:`EXIT_CODES`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

#: Exit status of each kind of failure (documented in ``scglassbox --help``).
EXIT_OK, EXIT_USAGE, EXIT_OUTPUT, EXIT_FIT, EXIT_INTERRUPT = 0, 2, 3, 4, 130
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_USAGE: "bad usage or bad input (options, input file, obs column, key)",
    EXIT_OUTPUT: "an output path cannot be written (checked before any work; also a full disk)",
    EXIT_FIT: "the fit or the summaries failed",
    EXIT_INTERRUPT: "interrupted (Ctrl-C); no output was written",
}


class CLIError(Exception):
    """A failure reported as one message with its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scglassbox")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def check_output_path(path: Path, what: str) -> Path:
    """Refuse, before any work, an output that cannot be written.

    The file's folder (created later if missing) must lie under a writable directory, not
    under a regular file; an existing target must be a file.
    """
    path = Path(path)
    if path.is_dir():
        raise CLIError(f"{what} {path} is a directory.", EXIT_OUTPUT)
    parent = path.absolute().parent
    ancestor = parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise CLIError(f"{what} {path}: {ancestor} is a file, not a directory.", EXIT_OUTPUT)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise CLIError(f"{what} {path}: directory {ancestor} is not writable.", EXIT_OUTPUT)
    if path.exists() and not os.access(path, os.W_OK) and not os.access(parent, os.W_OK):
        raise CLIError(f"{what} {path} is not writable.", EXIT_OUTPUT)
    return path


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """A temporary path next to ``path``; renamed over ``path`` only when the block succeeds.

    On any error or interrupt the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder (so the rename stays on one file system), same suffix (for the writers).
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would outlive the rename
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write(path: Path, writer: Callable[[Path], None], what: str) -> None:
    """``writer(tmp)`` then rename; an OSError (e.g. a full disk) becomes an output error."""
    try:
        with atomic_output(path) as tmp:
            writer(tmp)
    except OSError as e:
        raise CLIError(
            f"could not write {what} {path} ({e.strerror or e}); nothing was replaced.",
            EXIT_OUTPUT,
        ) from e


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
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def check_input(adata, *, groupby: str | None, layer: str | None, use_raw: bool) -> None:
    """Options that refer to the data: checked before the fit."""
    if groupby is not None and groupby not in adata.obs.columns:
        raise CLIError(f"--groupby {groupby!r} is not an obs column of the input.", EXIT_USAGE)
    if layer is not None and layer not in adata.layers:
        raise CLIError(
            f"--layer {layer!r} is not a layer of the input (layers: {list(adata.layers)}).",
            EXIT_USAGE,
        )
    if use_raw and adata.raw is None:
        raise CLIError("--use-raw: the input has no .raw.", EXIT_USAGE)
    if use_raw and layer is not None:
        raise CLIError("--use-raw and --layer exclude each other.", EXIT_USAGE)


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
    contributions: str | None = None,
    layer: str | None = None,
    use_raw: bool = False,
    accelerator: str = "auto",
):
    """Neighbours if missing, fit, contributions, summaries; write ``out`` and a PNG.

    Paths and options must have been checked (:func:`check_output_path`,
    :func:`check_input`); outputs are replaced atomically.
    """
    import scglassbox as gb

    from ._neighbors import ensure_neighbors

    png = png or out.with_suffix(".png")
    kwargs = {} if contributions is None else {"contributions": contributions}
    try:
        if ensure_neighbors(adata):
            print("No neighbour graph in the input: computed one with scanpy defaults.")
        gb.tl.glassbox_umap(
            adata, epochs=epochs, random_state=seed, key_added=key, quiet=quiet, layer=layer,
            use_raw=use_raw, accelerator=accelerator, **kwargs,
        )  # fmt: skip
        exact = adata.uns[key]["exactness"]
        if groupby is not None:
            gb.tl.rank_contributions(adata, groupby, key=key)
    except Exception as e:  # one line for the user, whatever failed inside
        raise CLIError(f"the fit failed: {type(e).__name__}: {e}", EXIT_FIT) from e
    _write(out, lambda tmp: adata.write_h5ad(tmp), "output")
    try:
        _write(png, lambda tmp: _summary_png(adata, tmp, groupby, key), "figure")
    except CLIError as e:
        raise CLIError(f"{e} The .h5ad {out} was written.", e.code) from e
    print(f"embedding + contributions: {out}")
    print(f"figure:                    {png}")
    print(f"exactness (max relative |sum of contributions - embedding|): {exact:.1e}")
    from .tl._quality import describe

    print(describe(adata.uns[key]["quality"]))
    written = [f"obsm['X_{key}']"]
    written += [f"obsm[{k!r}]" for k in adata.obsm if k == f"{key}_contributions"]
    written += [f"varm['{key}_contributions']", f"uns[{key!r}]"]
    if groupby is not None:
        written.append(f"uns['{key}_rank_{groupby}']")
    print(f"wrote: {', '.join(written)}")
    if groupby is not None:
        top = gb.get.rank_contributions_df(adata, groupby, key=key, n_genes=3)
        print(f"top 3 genes placing each {groupby} group (by mean contribution):")
        for group, rows in top.groupby("group", sort=False):
            print(f"  {group}: {', '.join(rows['gene'])}")
    return adata


def _parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {c:>3}  {what}" for c, what in EXIT_CODES.items())
    parser = argparse.ArgumentParser(
        prog="scglassbox",
        description="Glass-box UMAP with exact per-gene contributions.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {_version()}",
        help="print the version and exit",
    )  # fmt: skip
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", help="run: your .h5ad; demo: a try-out"
    )
    p_run = sub.add_parser(
        "run",
        help="fit on an .h5ad file and write the results",
        description="Fit a glass-box UMAP on an .h5ad file (computing PCA and neighbours with "
        "scanpy's defaults when the file has none) and write the results and a summary figure.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_run.add_argument("input", type=Path, help="input .h5ad file (never modified)")
    p_run.add_argument(
        "-o", "--output", type=Path, required=True,
        help="output .h5ad file; may be the input, which is replaced only once the new file "
        "is complete",
    )  # fmt: skip
    p_demo = sub.add_parser(
        "demo",
        help="run on scanpy's bundled pbmc68k_reduced (700 cells)",
        description="Fit on scanpy's bundled pbmc68k_reduced (700 cells) and write the results.",
        epilog=f"exit codes:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_demo.add_argument(
        "--outdir", type=Path, default=Path("scglassbox_demo"),
        help="folder for pbmc68k_glassbox.h5ad and .png (default: %(default)s)",
    )  # fmt: skip
    from .tl._results import STORAGES

    for p in (p_run, p_demo):
        p.add_argument(
            "--groupby", default=None,
            help="obs column to rank genes by (demo default: bulk_labels)",
        )  # fmt: skip
        p.add_argument(
            "--epochs", type=int, default=None,
            help="training epochs (default: chosen from the number of cells)",
        )  # fmt: skip
        p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
        p.add_argument(
            "--key-added", default="glassbox_umap",
            help="results go to obsm['X_<key>'], uns['<key>'], ... (default: %(default)s); "
            "no '/', not a key of scanpy's own tools",
        )  # fmt: skip
        p.add_argument(
            "--contributions", choices=STORAGES, default=None,
            help="storage of per-cell contributions in the .h5ad (default: that of "
            "gb.tl.glassbox_umap; 'none': recomputed from the stored model on demand)",
        )  # fmt: skip
        p.add_argument(
            "--layer", default=None, help="attribute contributions to this layer instead of X"
        )
        p.add_argument(
            "--use-raw", action="store_true", help="attribute contributions to adata.raw"
        )
        p.add_argument(
            "--accelerator", default="auto",
            help="Lightning accelerator: auto, cpu, gpu, mps, ... (default: %(default)s)",
        )  # fmt: skip
        p.add_argument(
            "--png", type=Path, default=None,
            help="summary figure path (default: the output path with .png)",
        )  # fmt: skip
        p.add_argument(
            "-q", "--quiet", action="store_true",
            help="no progress bar and no info messages (warnings and errors still show)",
        )  # fmt: skip
    return parser


def _fail(message: str, code: int) -> int:
    print(f"scglassbox: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scglassbox`` command; returns the exit status."""
    args = _parser().parse_args(argv)  # usage errors: argparse exits with status 2
    try:
        return _main(args)
    except CLIError as e:
        return _fail(str(e), e.code)
    except KeyboardInterrupt:
        return _fail("interrupted; no output was written or replaced.", EXIT_INTERRUPT)


def _main(args: argparse.Namespace) -> int:
    from . import _keys

    # Everything that can be checked without the data, before reading it.
    try:
        key = _keys.check_key_added(args.key_added, name="--key-added")
    except ValueError as e:
        raise CLIError(str(e), EXIT_USAGE) from e
    if args.epochs is not None and args.epochs < 1:
        raise CLIError(f"--epochs must be >= 1, got {args.epochs}.", EXIT_USAGE)
    if args.command == "demo":
        out = args.outdir / "pbmc68k_glassbox.h5ad"
        groupby = args.groupby or "bulk_labels"
    else:
        src = args.input
        if src.suffix.lower() != ".h5ad":
            raise CLIError(
                f"input {src} is not an .h5ad file (convert it with anndata or scanpy first).",
                EXIT_USAGE,
            )
        if not src.is_file():
            raise CLIError(f"input file {src} does not exist.", EXIT_USAGE)
        out, groupby = args.output, args.groupby
        if out.suffix.lower() != ".h5ad":
            raise CLIError(f"output {out} must end in .h5ad.", EXIT_USAGE)
    png = args.png or out.with_suffix(".png")
    check_output_path(out, "output")
    check_output_path(png, "figure")
    if png.absolute() == out.absolute():
        raise CLIError("--png and the output are the same file.", EXIT_USAGE)

    import scanpy as sc

    verbosity = sc.settings.verbosity
    sc.settings.verbosity = 1 if args.quiet else 2  # warnings always, info unless quiet
    try:
        _fit(args, out, png, key, groupby)
    finally:
        sc.settings.verbosity = verbosity
    return EXIT_OK


def _fit(args: argparse.Namespace, out: Path, png: Path, key: str, groupby: str | None) -> None:
    """Read the input, check the options against it, fit and write."""
    import scanpy as sc

    if args.command == "demo":
        adata = sc.datasets.pbmc68k_reduced()
        # The bundled PCA and graph were computed on other values than its (scaled) X: redo
        # both, as the README's quickstart does, so the fit can reuse scanpy's PCA.
        sc.pp.pca(adata)
        sc.pp.neighbors(adata)
    else:
        import anndata as ad

        try:
            adata = ad.read_h5ad(args.input)
        except Exception as e:  # h5py, anndata: many kinds of "not a valid file"
            msg = f"cannot read {args.input} as .h5ad: {type(e).__name__}: {e}"
            raise CLIError(msg, EXIT_USAGE) from e
    check_input(adata, groupby=groupby, layer=args.layer, use_raw=args.use_raw)
    run(
        adata, out, groupby=groupby, epochs=args.epochs, seed=args.seed, key=key,
        quiet=args.quiet, png=png, contributions=args.contributions, layer=args.layer,
        use_raw=args.use_raw, accelerator=args.accelerator,
    )  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
