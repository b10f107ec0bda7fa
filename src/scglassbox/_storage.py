"""A fitted model as plain numbers: for ``adata.uns`` and for ``.npz`` files. Never pickled.

The model block is a nested dict of str, int, float, bool and numpy arrays only, so it
round-trips through ``.h5ad`` and ``.zarr``. On disk it is one ``.npz`` file: arrays under
their ``/``-joined paths and everything else as a JSON string; it is read with
``allow_pickle=False``, so loading a file never runs code.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ._encoder import ENCODERS, GlassBoxMLP

FORMAT_VERSION = 1
LIBRARY = "scglassbox"
_META = "__meta__"


class ModelFormatError(ValueError):
    """A model block or file is not a valid scglassbox model."""


def state_dict_to_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    """Copy a module's weights to numpy arrays (CPU)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def build_from_block(block: dict) -> GlassBoxMLP:
    """Rebuild a built-in encoder from a model block and load its weights strictly."""
    arch = _require(block, "architecture", dict)
    name = _require(arch, "name", str)
    if name not in ENCODERS:
        raise ModelFormatError(
            f"architecture {name!r} is not a built-in encoder; load it with encoder=<your module>."
        )
    try:
        module = GlassBoxMLP(
            int(arch["n_in"]),
            int(arch["n_out"]),
            hidden=[int(h) for h in np.asarray(arch["hidden"]).ravel()],
            norm=name == "mlp_norm",
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFormatError(f"invalid architecture {arch!r}: {e}") from e
    load_weights(module, block)
    return module


def load_weights(module: nn.Module, block: dict) -> None:
    """Load ``block['state_dict']`` into ``module``, checking names, shapes and dtypes."""
    state = _require(block, "state_dict", dict)
    expected = module.state_dict()
    if set(state) != set(expected):
        raise ModelFormatError(
            f"weights do not match the encoder: missing {sorted(set(expected) - set(state))}, "
            f"unexpected {sorted(set(state) - set(expected))}."
        )
    tensors = {}
    for k, ref in expected.items():
        arr = np.asarray(state[k])
        if arr.shape != tuple(ref.shape) or arr.dtype.kind != "f":
            raise ModelFormatError(
                f"weight {k!r} has shape {arr.shape} and dtype {arr.dtype}, "
                f"expected {tuple(ref.shape)} floating point."
            )
        tensors[k] = torch.from_numpy(np.array(arr, dtype=np.float32))
    module.load_state_dict(tensors, strict=True)


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
    version = int(np.asarray(block.get("format_version", -1)))
    if version != FORMAT_VERSION:
        raise ModelFormatError(
            f"model format version {version} is not supported (this scglassbox reads "
            f"version {FORMAT_VERSION})."
        )
    return block


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
    """Write a model block to one ``.npz`` file (no pickle)."""
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {}
    _flatten(check_block(block), "", arrays, meta)
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    arrays[_META] = np.array(json.dumps(meta))
    np.savez(path, **arrays)
    return path


def load_block(path: str | os.PathLike) -> dict:
    """Read a model block written by :func:`save_block`. Never unpickles."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = {k: npz[k] for k in npz.files}
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise ModelFormatError(f"{path} is not a readable scglassbox model file: {e}") from e
    if _META not in files:
        raise ModelFormatError(f"{path} is not a scglassbox model file (no metadata).")
    try:
        block = json.loads(str(files.pop(_META)))
    except json.JSONDecodeError as e:
        raise ModelFormatError(f"{path} has corrupt metadata: {e}") from e
    if not isinstance(block, dict):
        raise ModelFormatError(f"{path} has corrupt metadata.")
    for name, arr in files.items():
        *parents, leaf = name.split("/")
        node = block
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ModelFormatError(f"{path}: array {name!r} clashes with metadata.")
        node[leaf] = arr
    return check_block(block)
