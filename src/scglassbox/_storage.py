"""A fitted model as plain numbers: for ``adata.uns`` and for model files. Never pickled.

The model block is a nested dict of str, int, float, bool and numpy arrays only, so it
round-trips through ``.h5ad`` and ``.zarr``. On disk it is one ``.npz``-format file (whatever
its name): arrays under their ``/``-joined paths and everything else as a JSON string; it is
read with ``allow_pickle=False``, so loading a file never runs code. Every field is checked
before anything is built from it: weight shapes against the architecture before a module is
allocated, and NaN or infinite numbers are refused.
"""

from __future__ import annotations

import json
import numbers
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._encoder import CONV_ENCODERS, ENCODERS, build_encoder, registered_encoders
from ._validation import check_int, check_real, scalar

FORMAT_VERSION = 1
LIBRARY = "scglassbox"
_META = "__meta__"

#: How to turn a file of the reference package (a torch pickle) into a scglassbox model.
CONVERT_HINT = (
    "It looks like a file written by torch.save (e.g. by the reference package "
    "glass_box_umap), i.e. a pickle, and scglassbox never unpickles files: loading a pickle "
    "can run arbitrary code. To convert it, load it with the package that wrote it, and only "
    "if you trust the file; then refit with scglassbox on the same data and parameters "
    "(gb.GlassBoxUMAP(...).fit(X)) and save that with GlassBoxUMAP.save(path)."
)


class ModelFormatError(ValueError):
    """A model block or file is not a valid scglassbox model."""


def state_dict_to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    """Copy a module's weights to numpy arrays (CPU)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def _positive_int(value: object, field: str, minimum: int = 1) -> int:
    return check_int(scalar(value), f"model field {field}", min=minimum, error=ModelFormatError)


def architecture(block: dict) -> tuple[str, int, int, tuple[int, ...]]:
    """``(name, n_in, n_out, hidden)`` of a built-in MLP encoder, each field checked."""
    name, n_in, n_out, kwargs, _ = encoder_spec(block)
    if name not in ENCODERS:
        raise ModelFormatError(f"architecture {name!r} is not a built-in MLP encoder.")
    return name, n_in, n_out, kwargs["hidden"]


def encoder_spec(block: dict) -> tuple[str, int, int, dict, tuple[int, ...] | None]:
    """``(name, n_in, n_out, kwargs, input_shape)`` to rebuild a block's encoder, checked.

    Built-in encoders (MLPs, ``"conv"``) and those registered with ``gb.register_encoder``;
    any other name is refused with what to do.
    """
    arch = _require(block, "architecture", dict)
    name = _require(arch, "name", str)
    registered = registered_encoders()
    if name not in ENCODERS and name not in CONV_ENCODERS and name not in registered:
        raise ModelFormatError(
            f"architecture {name!r} is not a built-in encoder nor one registered now: register "
            f"its class with @gb.register_encoder({name!r}) before loading, or load it with "
            "encoder=<your module>."
        )
    n_in = _positive_int(arch.get("n_in"), "architecture['n_in']")
    n_out = _positive_int(arch.get("n_out"), "architecture['n_out']")
    shape = None
    if name not in ENCODERS:
        shape = _int_list(arch, "input_shape")
        if not shape or int(np.prod(shape)) != n_in:
            raise ModelFormatError(
                f"model field architecture['input_shape'] {shape} does not hold "
                f"architecture['n_in'] = {n_in} inputs."
            )
    if name in registered:
        kwargs = arch.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise ModelFormatError("model field architecture['kwargs'] must be a dict.")
        return name, n_in, n_out, {k: _plain(v) for k, v in kwargs.items()}, shape
    kwargs: dict = {"hidden": _int_list(arch, "hidden")}
    if name == "mlp_routed":
        kwargs["experts"] = _positive_int(arch.get("experts"), "architecture['experts']")
        # Models saved before blending existed route every cell to one expert.
        for key in ("blend", "margin"):
            kwargs[key] = check_real(
                scalar(arch.get(key, 0.0)),
                f"model field architecture[{key!r}]",
                min=0,
                error=ModelFormatError,
            )
        # Models saved before gates existed have PReLU experts.
        kwargs["gate"] = _flag(arch, "gate")
    if name in CONV_ENCODERS:
        kwargs["channels"] = _int_list(arch, "channels")
        kwargs["norm"] = _flag(arch, "norm")
    return name, n_in, n_out, kwargs, shape


def _flag(arch: dict, key: str) -> bool:
    """``arch[key]`` as a bool (``False`` when absent)."""
    value = scalar(arch.get(key, False))
    if not isinstance(value, bool):
        raise ModelFormatError(f"model field architecture[{key!r}] must be a bool, got {value!r}.")
    return bool(value)


def _int_list(arch: dict, key: str) -> tuple[int, ...]:
    values = np.asarray(arch.get(key, []))
    if values.ndim > 1 or (values.size and values.dtype.kind not in "iu"):
        raise ModelFormatError(
            f"model field architecture[{key!r}] must be a list of integers, got {values!r}."
        )
    return tuple(_positive_int(h, f"architecture[{key!r}]") for h in values.ravel())


def _plain(v: object) -> object:
    """A stored ``encoder_kwargs`` value as Python: arrays back to lists, 0-d to scalars."""
    v = scalar(v)
    if isinstance(v, np.ndarray):
        if v.dtype.kind not in "biufU":
            raise ModelFormatError(f"model field architecture['kwargs'] holds {v.dtype} values.")
        return v.tolist()
    return v


def uns_safe_kwargs(kwargs: dict) -> dict:
    """``encoder_kwargs`` of a registered encoder as uns- and file-safe values.

    Numbers, strings, booleans and ``None`` stay; lists and tuples of them become arrays.
    Anything else cannot be stored without pickling and is refused.
    """
    out = {}
    for k, v in kwargs.items():
        if v is None or isinstance(v, bool | str | numbers.Real):
            out[k] = v
            continue
        arr = np.asarray(v) if isinstance(v, list | tuple) else None
        if arr is None or arr.dtype.kind not in "biufU" or arr.ndim != 1:
            raise ModelFormatError(
                f"encoder_kwargs[{k!r}] = {v!r} cannot be stored in a model file: use numbers, "
                "strings, booleans, None or flat lists of them."
            )
        out[k] = arr
    return out


def build_from_block(block: dict) -> nn.Module:
    """Rebuild a block's encoder and load its weights strictly.

    The stored weights are checked against the architecture on PyTorch's ``meta`` device
    first, so a crafted architecture (``hidden=[200000, 200000]``) allocates nothing. A
    registered class that cannot be built there is built on the CPU.
    """
    name, n_in, n_out, kwargs, shape = encoder_spec(block)

    def build(device: str) -> nn.Module:
        try:
            with torch.device(device):
                return build_encoder(name, n_in, n_out, shape, **kwargs)
        except (TypeError, ValueError) as e:
            raise ModelFormatError(f"cannot rebuild encoder {name!r} from the model: {e}") from e

    try:
        shapes = build("meta").state_dict()
    except ModelFormatError:
        raise
    except Exception:  # a registered class whose constructor computes on real tensors
        if name in ENCODERS or name in CONV_ENCODERS:
            raise
        shapes = build("cpu").state_dict()
    check_weights(block, {k: tuple(v.shape) for k, v in shapes.items()})
    module = build("cpu")
    load_weights(module, block)
    return module


def check_weights(block: dict, expected: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Check ``block['state_dict']`` names, shapes, dtypes and finiteness; return the arrays."""
    state = _require(block, "state_dict", dict)
    if set(state) != set(expected):
        raise ModelFormatError(
            f"weights do not match the encoder: missing {sorted(set(expected) - set(state))}, "
            f"unexpected {sorted(set(state) - set(expected))}."
        )
    arrays = {}
    for k, shape in expected.items():
        arr = np.asarray(state[k])
        if arr.shape != shape or arr.dtype.kind != "f":
            raise ModelFormatError(
                f"weight {k!r} has shape {arr.shape} and dtype {arr.dtype}, "
                f"expected {shape} floating point."
            )
        arr = np.array(arr, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ModelFormatError(f"weight {k!r} contains NaN or infinite values.")
        arrays[k] = arr
    return arrays


def load_weights(module: nn.Module, block: dict) -> None:
    """Load ``block['state_dict']`` into ``module``, checking names, shapes, dtypes, values."""
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    arrays = check_weights(block, expected)
    module.load_state_dict({k: torch.from_numpy(v) for k, v in arrays.items()}, strict=True)


def _require(d: dict, key: str, kind: type) -> object:
    if not isinstance(d, dict) or key not in d:
        raise ModelFormatError(f"model is missing {key!r}.")
    value = d[key]
    if kind is str and isinstance(value, np.ndarray) and value.ndim == 0:
        value = str(value)  # h5ad may hand strings back as 0-d arrays
    if not isinstance(value, kind):
        raise ModelFormatError(f"model field {key!r} should be {kind.__name__}.")
    return value


def check_block(block: object) -> dict:
    """Check the header of a model block (library and format version)."""
    if not isinstance(block, dict):
        raise ModelFormatError("a model block must be a dict.")
    lib = _require(block, "library", str)
    if lib != LIBRARY:
        raise ModelFormatError(f"not a scglassbox model (library={lib!r}).")
    if "format_version" not in block:
        raise ModelFormatError("model is missing 'format_version'.")
    name = "model field 'format_version'"
    version = check_int(scalar(block["format_version"]), name, error=ModelFormatError)
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"model format version {version} is not supported (this scglassbox reads "
            f"version {FORMAT_VERSION})."
        )
    return block


def _float_array(block: dict, key: str, ndim: int) -> np.ndarray:
    arr = np.asarray(block.get(key))
    if arr.dtype.kind not in "fiu" or arr.ndim != ndim:
        raise ModelFormatError(
            f"model field {key!r} must be a {ndim}-D numeric array, got dtype {arr.dtype} "
            f"and shape {arr.shape}."
        )
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise ModelFormatError(f"model field {key!r} contains NaN or infinite values.")
    return arr


def input_map_arrays(block: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """The checked centring ``mean`` and ``components`` of a block (``var_names`` too)."""
    if "mean" not in block:
        raise ModelFormatError("model is missing 'mean'.")
    mean = _float_array(block, "mean", 1)
    comps = None
    if block.get("components") is not None:
        comps = _float_array(block, "components", 2)
        if comps.shape[0] != mean.shape[0]:
            raise ModelFormatError(
                f"model field 'components' has {comps.shape[0]} rows but 'mean' has "
                f"{mean.shape[0]} features."
            )
    names = block.get("var_names")
    if names is not None:
        names = np.asarray(names).ravel()
        if names.shape[0] != mean.shape[0]:
            raise ModelFormatError(
                f"model field 'var_names' has {names.shape[0]} names but 'mean' has "
                f"{mean.shape[0]} features."
            )
        uniq, counts = np.unique(np.asarray(names, dtype=object).astype(str), return_counts=True)
        if (counts > 1).any():
            raise ModelFormatError(
                f"model field 'var_names' has duplicated names: {list(uniq[counts > 1][:10])}."
            )
    return mean, comps


def _flatten(d: dict, prefix: str, arrays: dict, meta: dict) -> None:
    for k, v in d.items():
        if "/" in k:
            raise ModelFormatError(f"key {k!r} contains '/'.")
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            meta[k] = {}
            _flatten(v, path + "/", arrays, meta[k])
        elif isinstance(v, np.ndarray):
            if v.dtype == object:
                raise ModelFormatError(f"{path} is an object array; refusing to store it.")
            arrays[path] = v
        else:
            meta[k] = v


def save_block(block: dict, path: str | os.PathLike) -> Path:
    """Write a model block to one file at exactly ``path`` (``.npz`` format, no pickle).

    Any name works (``model.npz``, ``model.pt``, ``model``): :func:`load_block` reads the
    same path back. The file is written next to the target and renamed over it, so an
    interrupted save never leaves a truncated model behind.
    """
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {}
    _flatten(check_block(block), "", arrays, meta)
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        what = "is not a directory" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"cannot save the model to {path}: folder {folder} {what}.")
    if path.is_dir():
        raise IsADirectoryError(f"cannot save the model to {path}: it is a directory.")
    arrays[_META] = np.array(json.dumps(meta))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # a file object: numpy appends no suffix
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _refuse_pickle(path: Path) -> None:
    """Refuse torch/pickle files by their first bytes or zip member names, without loading."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:1] == b"\x80":  # a pickle protocol marker: torch.save's legacy format
        raise ModelFormatError(f"{path} is a pickle, not a scglassbox model. {CONVERT_HINT}")
    if head != b"PK\x03\x04":
        return
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return  # np.load reports it below
    if any(n.endswith(".pkl") or n.split("/")[-1] in ("data.pkl", "version") for n in names):
        raise ModelFormatError(f"{path} is a torch pickle archive. {CONVERT_HINT}")


def load_block(path: str | os.PathLike) -> dict:
    """Read a model block written by :func:`save_block`. Never unpickles.

    A path that does not exist falls back to ``path + '.npz'``, where earlier versions of
    :func:`save_block` wrote a model saved under a name without that suffix.
    """
    path = Path(path)
    if not path.exists() and path.suffix != ".npz" and path.with_name(path.name + ".npz").exists():
        path = path.with_name(path.name + ".npz")
    if not path.exists():
        raise FileNotFoundError(f"No such model file: {str(path)!r}")
    _refuse_pickle(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, AttributeError) as e:
        raise ModelFormatError(f"{path} is not a readable scglassbox model file: {e}") from e
    if _META not in files:
        raise ModelFormatError(f"{path} is not a scglassbox model file (no metadata).")
    try:
        block = json.loads(str(files.pop(_META)))
    except json.JSONDecodeError as e:
        raise ModelFormatError(f"{path} has corrupt metadata: {e}") from e
    except RecursionError as e:
        raise ModelFormatError(f"{path} has corrupt metadata: nested too deeply.") from e
    if not isinstance(block, dict):
        raise ModelFormatError(f"{path} has corrupt metadata.")
    for name, arr in files.items():
        if not isinstance(arr, np.ndarray):
            raise ModelFormatError(f"{path}: member {name!r} is not a numpy array.")
        *parents, leaf = name.split("/")
        node = block
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ModelFormatError(f"{path}: array {name!r} clashes with metadata.")
        node[leaf] = arr
    return check_block(block)
