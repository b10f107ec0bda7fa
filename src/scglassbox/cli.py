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

from . import _keys  # no heavy imports: the CLI starts fast

#: Exit status of each kind of failure (documented in ``scglassbox --help``).
EXIT_OK, EXIT_USAGE, EXIT_OUTPUT, EXIT_FIT, EXIT_INTERRUPT = 0, 2, 3, 4, 130
EXIT_CODES = {
    EXIT_OK: "success",
    EXIT_USAGE: "bad usage or bad input (options, input file, obs column, key)",
    EXIT_OUTPUT: "an output path cannot be written (checked before any work; also a full disk)",
    EXIT_FIT: "the fit or the summaries failed",
    EXIT_INTERRUPT: "interrupted (Ctrl-C); says which outputs, if any, were complete before it",
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
    # Permissions are not the whole story (/proc, /sys, read-only mounts): create a file.
    try:
        fd, probe = tempfile.mkstemp(prefix=".scglassbox-probe-", dir=ancestor)
    except OSError as e:
        raise CLIError(
            f"{what} {path}: cannot create files in {ancestor} ({e.strerror or e}).", EXIT_OUTPUT
        ) from e
    os.close(fd)
    os.unlink(probe)
    return path


#: Room kept free beyond an output's estimated size (metadata, HDF5 overhead).
SPACE_MARGIN = 1.1
SPACE_SLACK_BYTES = 16 * 2**20


def estimated_bytes(adata) -> int:
    """Bytes an uncompressed ``.h5ad`` of ``adata`` takes, about (its arrays' sizes)."""
    from scipy import sparse

    def size(a) -> int:
        if a is None:
            return 0
        if sparse.issparse(a):
            return a.data.nbytes + a.indices.nbytes + a.indptr.nbytes
        if isinstance(a, dict):
            return sum(size(v) for v in a.values())
        return int(getattr(a, "nbytes", 0))

    total = size(adata.X)
    for slot in (adata.layers, adata.obsm, adata.varm, adata.obsp, adata.varp):
        total += sum(size(v) for v in slot.values())
    total += size(dict(adata.uns))
    if adata.raw is not None:
        total += size(adata.raw.X)
    total += adata.obs.memory_usage(deep=True).sum() + adata.var.memory_usage(deep=True).sum()
    return int(total)


def check_free_space(path: Path, need: int, what: str) -> None:
    """Refuse to start writing ``need`` bytes where the disk has not that much room.

    HDF5 handles a full disk badly (a flood of errors, then possibly a crash that leaves the
    temporary file behind), so the room is checked first.
    """
    import shutil

    folder = Path(path).absolute().parent
    while not folder.exists():  # created later, on the disk of its nearest existing ancestor
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    want = int(need * SPACE_MARGIN) + SPACE_SLACK_BYTES
    if free < want:
        raise CLIError(
            f"not enough disk space for {what} {path}: it needs about {want / 2**20:,.0f} MB, "
            f"{free / 2**20:,.0f} MB are free; nothing was written or replaced.",
            EXIT_OUTPUT,
        )


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


#: Outputs renamed into place by this run, so an interrupt can say what is complete.
_WRITTEN: list[Path] = []


def _write(path: Path, writer: Callable[[Path], None], what: str) -> None:
    """``writer(tmp)`` then rename; an OSError (e.g. a full disk) becomes an output error."""
    try:
        with atomic_output(path) as tmp:
            writer(tmp)
    except OSError as e:
        raise CLIError(
            f"could not write {what} {path} ({e.strerror or e}); {path} was not replaced.",
            EXIT_OUTPUT,
        ) from e
    _WRITTEN.append(path)


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
    genes = "importance" not in adata.uns[key]  # else a latent use_rep's dimensions
    ax2.set_title(f"Top {'genes' if genes else 'dimensions'} placing cells")
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def check_input(
    adata,
    *,
    groupby: str | None,
    layer: str | None,
    use_raw: bool,
    use_rep: str | None = None,
    batch_key: str | None = None,
) -> None:
    """Options that refer to the data: checked before the fit, by the checks the fit runs."""
    from .get import _access as acc
    from .get._batch import batch_codes

    def refuse_unless(flag: str, check: Callable[[], object]) -> None:
        try:
            check()
        except (KeyError, ValueError) as e:
            reason = e.args[0] if e.args else e  # a KeyError's str() is the repr of its text
            raise CLIError(f"{flag}: {reason}", EXIT_USAGE) from e

    if batch_key is not None:
        refuse_unless("--batch-key", lambda: batch_codes(adata, batch_key))
    if use_rep not in (None, "X"):
        refuse_unless("--use-rep", lambda: acc.rep_array(adata, use_rep))
    if groupby is not None:
        refuse_unless("--groupby", lambda: acc.categorical(adata, groupby))
    if layer is not None or use_raw:  # not X, the default: with --use-rep it may go unread
        flag = "--use-raw" if use_raw else "--layer"
        refuse_unless(flag, lambda: acc.source_matrix(adata, acc.source_name(layer, use_raw)))


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
    use_rep: str | None = None,
    batch_key: str | None = None,
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
            use_raw=use_raw, accelerator=accelerator, use_rep=use_rep, batch_key=batch_key,
            **kwargs,
        )  # fmt: skip
        exact = adata.uns[key]["exactness"]
        if groupby is not None:
            gb.tl.rank_contributions(adata, groupby, key=key)
    except Exception as e:  # one line for the user, whatever failed inside
        raise CLIError(f"the fit failed: {type(e).__name__}: {e}", EXIT_FIT) from e
    check_free_space(out, estimated_bytes(adata), "output")
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
    if batch_key is not None:
        share = float(adata.obs[f"{key}_batch_share"].median())
        print(f"batch term ({batch_key}): {share:.1%} of a cell's explanation (median)")
    written = [f"obsm['X_{key}']"]
    written += [f"obsm[{k!r}]" for k in adata.obsm if k == _keys.contributions_key(key)]
    written += [f"varm[{k!r}]" for k in adata.varm if k == _keys.contributions_key(key)]
    written += [f"obs[{k!r}]" for k in adata.obs.columns if k == f"{key}_batch_share"]
    written.append(f"uns[{key!r}]")
    if groupby is not None:
        written.append(f"uns['{key}_rank_{groupby}']")
    print(f"wrote: {', '.join(written)}")
    if groupby is not None:
        top = gb.get.rank_contributions_df(adata, groupby, key=key, n_genes=3)
        print(f"top 3 genes placing each {groupby} group (by mean contribution):")
        for group, rows in top.groupby("group", sort=False):
            print(f"  {group}: {', '.join(rows['gene'])}")
    return adata


#: The options ``run`` and ``demo`` share: (flags, ``add_argument`` keywords).
SHARED_OPTIONS: list[tuple[tuple[str, ...], dict]] = [
    (("--groupby",), {"help": "obs column to rank genes by (demo default: bulk_labels)"}),
    (("--epochs",), {"type": int,
                     "help": "training epochs (default: chosen from the number of cells)"}),
    (("--seed",), {"type": int, "default": 0, "help": "random seed (default: %(default)s)"}),
    (("--key-added",), {
        "default": _keys.DEFAULT_KEY,
        "help": "results go to obsm['X_<key>'], uns['<key>'], ... (default: %(default)s); "
        "no '/', not a key of scanpy's own tools",
    }),
    (("--contributions",), {
        "choices": _keys.STORAGES,
        "help": "storage of per-cell contributions in the .h5ad (default: that of "
        "gb.tl.glassbox_umap; 'none': recomputed from the stored model on demand)",
    }),
    (("--layer",), {"help": "attribute contributions to this layer instead of X"}),
    (("--use-raw",), {"action": "store_true", "help": "attribute contributions to adata.raw"}),
    (("--use-rep",), {
        "help": "obsm key the encoder reads, e.g. X_pca_harmony (default: the graph's own "
        "representation when it is a corrected PCA, else the expression; X: the expression)",
    }),
    (("--batch-key",), {
        "help": "obs column of batches read as exact input features: each cell's coordinates "
        "split into genes + a batch term (obs <key>_batch_share)",
    }),
    (("--accelerator",), {
        "default": "auto",
        "help": "Lightning accelerator: auto, cpu, gpu, mps, ... (default: %(default)s)",
    }),
    (("--png",), {"type": Path,
                  "help": "summary figure path (default: the output path with .png)"}),
    (("-q", "--quiet"), {
        "action": "store_true",
        "help": "no progress bar and no info messages (warnings and errors still show)",
    }),
]  # fmt: skip


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

    for p in (p_run, p_demo):
        for flags, options in SHARED_OPTIONS:
            p.add_argument(*flags, **options)
    return parser


def _fail(message: str, code: int) -> int:
    print(f"scglassbox: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scglassbox`` command; returns the exit status."""
    args = _parser().parse_args(argv)  # usage errors: argparse exits with status 2
    _WRITTEN.clear()
    try:
        return _main(args)
    except CLIError as e:
        return _fail(str(e), e.code)
    except KeyboardInterrupt:
        if not _WRITTEN:
            return _fail("interrupted; no output was written or replaced.", EXIT_INTERRUPT)
        done = ", ".join(str(p) for p in _WRITTEN)
        return _fail(
            f"interrupted; {done} was written completely before the interrupt; the later "
            "outputs were not written.",
            EXIT_INTERRUPT,
        )


def _main(args: argparse.Namespace) -> int:
    from . import _keys
    from ._validation import check_int, check_seed

    # Everything that can be checked without the data, before reading it.
    try:
        key = _keys.check_key_added(args.key_added, name="--key-added")
        if args.epochs is not None:
            check_int(args.epochs, "--epochs", min=1)
        check_seed(args.seed, "--seed", optional=False)
    except ValueError as e:
        raise CLIError(str(e), EXIT_USAGE) from e
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
    check_input(
        adata, groupby=groupby, layer=args.layer, use_raw=args.use_raw, use_rep=args.use_rep,
        batch_key=args.batch_key,
    )  # fmt: skip
    # The output holds at least the input: a disk without that room fails now, not after the
    # fit (run() checks again with the results, just before writing).
    check_free_space(out, estimated_bytes(adata), "output")
    run(
        adata, out, groupby=groupby, epochs=args.epochs, seed=args.seed, key=key,
        # A progress bar redrawn into a log file is dozens of carriage-return lines: bars only
        # on a terminal.
        quiet=args.quiet or not sys.stderr.isatty(), png=png,
        contributions=args.contributions, layer=args.layer,
        use_raw=args.use_raw, accelerator=args.accelerator, use_rep=args.use_rep,
        batch_key=args.batch_key,
    )  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
