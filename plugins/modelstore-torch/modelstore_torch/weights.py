"""Streaming reader and writer of the safetensors format, for torch tensors.

``safetensors.torch.load_file`` reads through an ``mmap`` whose pages count in the process's
resident memory beside the tensors it copies out (a 400 MB model loaded into an instance
peaks at about 2.6x its weights, measured with safetensors 0.8), older ``save_file`` releases
turn every tensor into a ``bytes`` copy first, and ``save_file`` refuses shared or
non-contiguous tensors and writes ``__metadata__`` in hash-map order. This module writes the
same bytes tensor by tensor straight from each tensor's memory, and reads each tensor with
``readinto`` into memory allocated once (or straight into a parameter), so uploads and loads
hold about one copy of the weights.

The layout is exactly ``safetensors.torch.save_file``'s (tests compare the bytes): tensors
ordered by dtype (descending in safetensors' own ``Dtype`` enum order) then name, a compact JSON
header padded with spaces to 8 bytes, little-endian data. The ``__metadata__`` keys are
sorted (safetensors writes them in hash-map order, which differs between runs when there is
more than one key).
"""

from __future__ import annotations

import ctypes
import json
import struct
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

import torch

#: safetensors dtype name -> torch dtype, in safetensors' own ``Dtype`` order (ascending).
DTYPES: dict[str, torch.dtype] = {}
for _name, _attr in [
    ("BOOL", "bool"),
    ("U8", "uint8"),
    ("I8", "int8"),
    ("F8_E5M2", "float8_e5m2"),
    ("F8_E4M3", "float8_e4m3fn"),
    ("F8_E8M0", "float8_e8m0fnu"),
    ("I16", "int16"),
    ("U16", "uint16"),
    ("F16", "float16"),
    ("BF16", "bfloat16"),
    ("I32", "int32"),
    ("U32", "uint32"),
    ("F32", "float32"),
    ("C64", "complex64"),
    ("F64", "float64"),
    ("I64", "int64"),
    ("U64", "uint64"),
]:
    if hasattr(torch, _attr):  # older torch lacks some of the narrow types
        DTYPES[_name] = getattr(torch, _attr)
NAMES = {dtype: name for name, dtype in DTYPES.items()}
RANK = {name: i for i, name in enumerate(DTYPES)}

MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit
CHUNK = 64 * 1024 * 1024  # bytes per write()/readinto() call


class FormatError(ValueError):
    """A file that is not valid safetensors (or uses a dtype this reader does not know)."""


def dtype_name(dtype: torch.dtype) -> str:
    try:
        return NAMES[dtype]
    except KeyError:
        raise TypeError(f"safetensors cannot store tensors of dtype {dtype}") from None


def _buffer(tensor: torch.Tensor) -> memoryview:
    """A writable byte view of a CPU, contiguous tensor's memory (no copy); keep ``tensor`` alive while it is used."""
    nbytes = tensor.numel() * tensor.element_size()
    return memoryview((ctypes.c_char * nbytes).from_address(tensor.data_ptr())).cast("B")


def _check_little_endian() -> None:
    if sys.byteorder != "little":  # pragma: no cover - no big-endian CI
        raise NotImplementedError("modelstore-torch reads and writes safetensors only on little-endian machines")


def header_bytes(
    entries: list[tuple[str, str, list[int], int]], metadata: dict[str, str] | None
) -> tuple[bytes, list[tuple[str, int, int]]]:
    """The padded JSON header for ``(name, dtype, shape, nbytes)`` entries and their data order.

    :return: the header (without its 8-byte length) and ``(name, begin, end)`` in file order.
    """
    ordered = sorted(entries, key=lambda e: (-RANK[e[1]], e[0]))
    header: dict[str, Any] = {}
    if metadata:
        header["__metadata__"] = {k: metadata[k] for k in sorted(metadata)}
    layout = []
    offset = 0
    for name, dtype, shape, nbytes in ordered:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        layout.append((name, offset, offset + nbytes))
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    raw += b" " * (-len(raw) % 8)
    return raw, layout


def write(path: Path, tensors: Iterable[tuple[str, torch.Tensor]], metadata: dict[str, str] | None = None) -> None:
    """Write ``(name, tensor)`` pairs as a safetensors file, one tensor at a time.

    Tensors may live on any device and need not be contiguous: each is moved to the CPU and
    made contiguous on its own just before its bytes are written (so at most one extra
    tensor is held at a time). Names must be unique.
    """
    _check_little_endian()
    tensors = list(tensors)
    by_name: dict[str, torch.Tensor] = {}
    entries = []
    for name, tensor in tensors:
        if not isinstance(name, str):
            raise TypeError(f"safetensors tensor names must be strings, not {type(name).__name__}")
        if name in by_name:
            raise ValueError(f"two tensors are named {name!r}")
        if name == "__metadata__":
            raise ValueError("'__metadata__' cannot name a tensor in a safetensors file")
        if tensor.is_sparse or tensor.layout != torch.strided:
            raise TypeError(f"tensor {name!r} is {tensor.layout}; safetensors stores dense tensors only")
        by_name[name] = tensor
        entries.append((name, dtype_name(tensor.dtype), list(tensor.shape), tensor.numel() * tensor.element_size()))
    header, layout = header_bytes(entries, metadata)
    with open(path, "wb", buffering=0) as f:
        _write_all(f, struct.pack("<Q", len(header)))
        _write_all(f, header)
        for name, begin, end in layout:
            if end == begin:
                continue
            tensor = by_name[name].detach()
            if tensor.device.type != "cpu":
                tensor = tensor.cpu()
            if not tensor.is_contiguous():
                tensor = tensor.contiguous()
            if tensor.is_conj():
                tensor = tensor.resolve_conj()
            if tensor.is_neg():
                tensor = tensor.resolve_neg()
            _write_all(f, _buffer(tensor))
            del tensor


def _write_all(f: BinaryIO, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        n = f.write(view[:CHUNK])
        view = view[n:]


class Reader:
    """An open safetensors file: its header, and tensors read one at a time without ``mmap``."""

    def __init__(self, path: Path):
        _check_little_endian()
        self.path = Path(path)
        self._file = open(self.path, "rb", buffering=0)
        try:
            self.metadata, self.entries, self._data_start = self._parse()
        except BaseException:
            self._file.close()
            raise

    def _parse(self) -> tuple[dict[str, str], dict[str, dict[str, Any]], int]:
        size = self.path.stat().st_size
        head = self._file.read(8)
        if len(head) != 8:
            raise FormatError(f"{self.path.name} is too short to be a safetensors file")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER or 8 + n > size:
            raise FormatError(f"{self.path.name} has an invalid safetensors header length {n}")
        try:
            header = json.loads(self._file.read(n))
        except ValueError as exc:
            raise FormatError(f"{self.path.name} has an unreadable safetensors header: {exc}") from None
        if not isinstance(header, dict):
            raise FormatError(f"{self.path.name} has an invalid safetensors header")
        metadata = header.pop("__metadata__", None) or {}
        data_size = size - 8 - n
        for name, entry in header.items():
            try:
                dtype = DTYPES[entry["dtype"]]
                begin, end = (int(x) for x in entry["data_offsets"])
                shape = [int(d) for d in entry["shape"]]
            except (KeyError, TypeError, ValueError):
                raise FormatError(f"tensor {name!r} in {self.path.name} has an unsupported or invalid entry {entry!r}") from None
            numel = 1
            for d in shape:
                numel *= d
            if not 0 <= begin <= end <= data_size or end - begin != numel * dtype.itemsize:
                raise FormatError(f"tensor {name!r} in {self.path.name} has inconsistent data offsets")
            entry["torch_dtype"] = dtype
        return metadata, header, 8 + n

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def keys(self) -> list[str]:
        """Tensor names in file order."""
        return sorted(self.entries, key=lambda k: self.entries[k]["data_offsets"][0])

    def nbytes(self, name: str) -> int:
        begin, end = self.entries[name]["data_offsets"]
        return end - begin

    def read(self, name: str) -> torch.Tensor:
        """A new CPU tensor holding ``name``'s data."""
        entry = self.entries[name]
        tensor = torch.empty(entry["shape"], dtype=entry["torch_dtype"])
        self.readinto(name, tensor)
        return tensor

    def fits(self, name: str, tensor: torch.Tensor) -> bool:
        """Whether :meth:`readinto` can fill ``tensor`` with ``name``'s data: same dtype and shape, dense, CPU, contiguous."""
        entry = self.entries[name]
        return (
            tensor.device.type == "cpu"
            and tensor.layout == torch.strided
            and tensor.dtype == entry["torch_dtype"]
            and list(tensor.shape) == entry["shape"]
            and tensor.is_contiguous()
            and not tensor.is_conj()
            and not tensor.is_neg()
        )

    def readinto(self, name: str, tensor: torch.Tensor) -> None:
        """Read ``name``'s bytes straight into ``tensor``'s memory (which must :meth:`fit <fits>`)."""
        if not self.fits(name, tensor):
            raise ValueError(f"tensor {name!r} cannot be read in place into a {tensor.dtype} {list(tensor.shape)} tensor")
        begin, end = self.entries[name]["data_offsets"]
        if end == begin:
            return
        self._file.seek(self._data_start + begin)
        view = _buffer(tensor)
        done = 0
        while done < len(view):
            n = self._file.readinto(view[done : done + CHUNK])
            if not n:
                raise FormatError(f"{self.path.name} ended inside tensor {name!r}")
            done += n
