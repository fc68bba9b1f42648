"""Nested Python values with tensors in one safetensors file, read back without running any code.

A value (dicts, lists, tuples, tensors, NumPy arrays and JSON-able scalars, nested) is split into its
tensors, stored as safetensors entries ``t0``, ``t1``, ..., and a JSON *skeleton* of everything else in
which each tensor is a reference (``{"$tensor": "t0"}``). The skeleton's UTF-8 bytes are the ``uint8``
entry ``__json__`` (a tensor, so large string lists do not meet safetensors' header limit). The header's
metadata holds the ``kind`` of file and a SHA-256 over the skeleton and every tensor (name, dtype, shape,
bytes), recomputed and compared on reading, so a changed or damaged file is refused.

JSON cannot say everything Python can, so the skeleton tags what it would otherwise lose::

    {"$tuple": [...]}                  a tuple
    {"$dict": [[key, value], ...]}     a dict whose keys are not all strings (or start with "$")
    {"$float": "nan" | "inf" | "-inf"} a non-finite float
    {"$ndarray": "t3"}                 a NumPy array (stored as a tensor, given back as an array)
    {"$sparse_coo": {"indices": "t4", "values": "t5", "size": [...]}}   a sparse COO tensor

Reading uses the safetensors parser and :func:`json.loads` only: no pickle, whatever the file holds.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

JSON_ENTRY = "__json__"
KIND_KEY = "kind"
DIGEST_KEY = "sha256"
LAYOUT_KEY = "layout"
LAYOUT = "gnnrec-tensor-file-1"
MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit
PICKLE_HINT = "a pickle file (torch.save); gnnrec never unpickles, because unpickling can run code"
_TAGS = ("$tuple", "$dict", "$float", "$tensor", "$ndarray", "$sparse_coo")


class TensorFileError(ValueError):
    """A file is not a readable, intact gnnrec tensor file of the expected kind."""


class PickleFileError(TensorFileError):
    """The file is a pickle (e.g. written by ``torch.save``): refused, since unpickling can run code."""


# ---------------------------------------------------------------------- value <-> (skeleton, tensors)
def flatten(value: Any) -> tuple[Any, dict[str, torch.Tensor]]:
    """Split ``value`` into a JSON-able skeleton and its tensors (CPU, contiguous, storage not shared)."""
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()

    def add(tensor: torch.Tensor) -> str:
        tensor = tensor.detach().to("cpu").contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if tensor.numel() and pointer in storages:  # safetensors refuses entries that share memory
            tensor = tensor.clone()
        storages.add(tensor.untyped_storage().data_ptr())
        name = f"t{len(tensors)}"
        tensors[name] = tensor
        return name

    def encode(item: Any) -> Any:
        if item is None or isinstance(item, (bool, str)):
            return item
        if isinstance(item, (int, np.integer)) and not isinstance(item, np.bool_):
            return int(item)
        if isinstance(item, (float, np.floating)):
            item = float(item)
            return item if math.isfinite(item) else {"$float": repr(item)}
        if isinstance(item, np.bool_):
            return bool(item)
        if isinstance(item, torch.Tensor):
            if item.layout == torch.sparse_coo:
                item = item.coalesce()
                return {"$sparse_coo": {"indices": add(item.indices()), "values": add(item.values()),
                                        "size": list(item.shape)}}  # fmt: skip
            if item.layout != torch.strided:
                raise TypeError(f"cannot store a tensor with layout {item.layout}")
            return {"$tensor": add(item)}
        if isinstance(item, np.ndarray):
            if item.dtype.kind not in "biuf":
                raise TypeError(f"cannot store a NumPy array of dtype {item.dtype}")
            return {"$ndarray": add(torch.from_numpy(np.ascontiguousarray(item)))}
        if isinstance(item, tuple):
            return {"$tuple": [encode(v) for v in item]}
        if isinstance(item, list):
            return [encode(v) for v in item]
        if isinstance(item, dict):
            if all(isinstance(k, str) and not k.startswith("$") for k in item):
                return {k: encode(v) for k, v in item.items()}
            return {"$dict": [[encode(k), encode(v)] for k, v in item.items()]}
        raise TypeError(f"cannot store a {type(item).__name__} (only tensors, arrays, containers and scalars)")

    return encode(value), tensors


def unflatten(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten`; a malformed skeleton raises :class:`TensorFileError`."""

    def tensor(name: Any) -> torch.Tensor:
        if not isinstance(name, str) or name not in tensors or name == JSON_ENTRY:
            raise TensorFileError(f"the skeleton refers to a tensor {name!r} that the file does not hold")
        return tensors[name]

    def decode(item: Any, depth: int) -> Any:
        if depth > 200:
            raise TensorFileError("the skeleton is nested too deeply")
        if item is None or isinstance(item, (bool, int, float, str)):
            return item
        if isinstance(item, list):
            return [decode(v, depth + 1) for v in item]
        if not isinstance(item, dict):
            raise TensorFileError(f"unexpected {type(item).__name__} in the skeleton")
        if len(item) == 1 and next(iter(item)) in _TAGS:
            tag, body = next(iter(item.items()))
            if tag == "$tensor":
                return tensor(body)
            if tag == "$ndarray":
                return tensor(body).numpy()
            if tag == "$tuple" and isinstance(body, list):
                return tuple(decode(v, depth + 1) for v in body)
            if tag == "$float" and body in ("nan", "inf", "-inf"):
                return float(body)
            if tag == "$dict" and isinstance(body, list) and all(isinstance(p, list) and len(p) == 2 for p in body):
                out = {}
                for key, value in body:
                    key = decode(key, depth + 1)
                    try:
                        out[key] = decode(value, depth + 1)
                    except TypeError:  # an unhashable key
                        raise TensorFileError(f"the skeleton has an unusable dict key {key!r}") from None
                return out
            if tag == "$sparse_coo" and isinstance(body, dict) and set(body) == {"indices", "values", "size"}:
                try:
                    return torch.sparse_coo_tensor(
                        tensor(body["indices"]), tensor(body["values"]), body["size"], check_invariants=True
                    )
                except (RuntimeError, TypeError, ValueError) as error:
                    raise TensorFileError(f"a sparse tensor of the file is malformed: {error}") from None
            raise TensorFileError(f"malformed {tag} entry in the skeleton")
        if any(key.startswith("$") for key in item):
            raise TensorFileError(f"unknown tag in the skeleton: {sorted(item)}")
        return {k: decode(v, depth + 1) for k, v in item.items()}

    return decode(skeleton, 0)


def digest(skeleton_bytes: bytes, tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the skeleton and every tensor's name, dtype, shape and bytes (in name order)."""
    hasher = hashlib.sha256(LAYOUT.encode() + b"\0" + skeleton_bytes)
    for name in sorted(tensors):
        if name == JSON_ENTRY:
            continue
        tensor = tensors[name]
        hasher.update(f"\0{name}\0{tensor.dtype}\0{list(tensor.shape)}\0".encode())
        if tensor.numel():
            flat = tensor.reshape(-1)
            if flat.stride(0) != 1:  # a one-element tensor counts as contiguous with any stride
                flat = torch.empty_like(flat, memory_format=torch.contiguous_format).copy_(flat)
            hasher.update(memoryview(flat.view(torch.uint8).numpy()))
    return hasher.hexdigest()


# ---------------------------------------------------------------------- files
def write_tensor_file(path: str | Path, value: Any, kind: str, metadata: dict[str, str] | None = None) -> None:
    """Write ``value`` to ``path`` (not atomically: wrap the call in :func:`gnnrec.utils.atomic_path`)."""
    skeleton, tensors = flatten(value)
    skeleton_bytes = json.dumps(skeleton, ensure_ascii=False, allow_nan=False).encode("utf-8")
    header = {**(metadata or {}), KIND_KEY: kind, LAYOUT_KEY: LAYOUT, DIGEST_KEY: digest(skeleton_bytes, tensors)}
    tensors[JSON_ENTRY] = torch.from_numpy(np.frombuffer(skeleton_bytes, dtype=np.uint8).copy())
    save_file(tensors, str(path), metadata=header)


def sniff(path: Path) -> str:
    """``"safetensors"``, ``"pickle"`` (a ``torch.save`` zip or a raw pickle) or ``"other"``, from the first bytes."""
    with path.open("rb") as handle:
        head = handle.read(9)
    # safetensors first: its first byte is the low byte of the header length, 0x80 for a 384-byte header, which
    # is also the opcode that opens a raw pickle
    if len(head) == 9:
        (size,) = struct.unpack("<Q", head[:8])
        if 1 < size <= MAX_HEADER_BYTES and head[8:9] == b"{" and size + 8 <= path.stat().st_size:
            return "safetensors"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "pickle"
    return "other"


def read_tensor_file(path: str | Path, kind: str) -> tuple[Any, dict[str, str]]:
    """The value stored in ``path`` and the header metadata; refuses pickles, other kinds and changed files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}")
    found = sniff(path)
    if found == "pickle":
        raise PickleFileError(f"{path} is {PICKLE_HINT}")
    if found != "safetensors":
        raise TensorFileError(f"{path} is not a safetensors file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            # copied out of the file's memory map: a file changed in place later must not crash this process
            tensors = {name: handle.get_tensor(name).clone() for name in handle.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, RuntimeError, ValueError, TypeError) as error:
        raise TensorFileError(f"{path} is damaged or not a safetensors file: {error}") from None
    if metadata.get(KIND_KEY) != kind or metadata.get(LAYOUT_KEY) != LAYOUT:
        raise TensorFileError(f"{path} is not a {kind} (kind {metadata.get(KIND_KEY)!r})")
    raw = tensors.get(JSON_ENTRY)
    if raw is None or raw.dtype != torch.uint8 or raw.dim() != 1:
        raise TensorFileError(f"{path} has no {JSON_ENTRY} entry")
    skeleton_bytes = raw.numpy().tobytes()
    if digest(skeleton_bytes, tensors) != metadata.get(DIGEST_KEY):
        raise TensorFileError(f"{path} fails its SHA-256 check: the file was changed or damaged after it was written")
    try:
        skeleton = json.loads(skeleton_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise TensorFileError(f"{path} has an unreadable skeleton: {error}") from None
    return unflatten(skeleton, tensors), metadata
