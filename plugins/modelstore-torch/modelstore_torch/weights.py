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
import os
import struct
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from modelstore_core.plugin_api import CorruptArtifactError, HashingWriter

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
MAX_ELEMENTS = 2**63 - 1  # torch sizes and strides are int64


class FormatError(CorruptArtifactError, ValueError):
    """A file that is not valid safetensors (or uses a dtype this reader does not know): refused
    before any tensor is built. ``problem`` names the check that failed."""


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


def write(path: Path, tensors: Iterable[tuple[str, torch.Tensor]], metadata: dict[str, str] | None = None) -> str:
    """Write ``(name, tensor)`` pairs as a safetensors file, one tensor at a time; returns the
    file's sha256, computed on a second thread as the bytes are written (no second read).

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
    with HashingWriter(path) as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
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
            f.write(_buffer(tensor))
            del tensor
    return f.sha256


def shard_name(i: int, n: int) -> str:
    """The Hugging Face name of shard ``i`` (from 1) of ``n``: ``model-00001-of-00003.safetensors``."""
    return f"model-{i:05d}-of-{n:05d}.safetensors"


#: The Hugging Face index beside the shards: ``{"metadata": {"total_size": n}, "weight_map": {tensor: shard}}``.
INDEX = "model.safetensors.index.json"


def plan_shards(tensors: list[tuple[str, torch.Tensor]], shard_size: int) -> list[list[tuple[str, torch.Tensor]]]:
    """Split ``(name, tensor)`` pairs into shards of about equal size, none over ``shard_size`` bytes
    unless one tensor is (it then has a shard of its own); in the order a single file would hold
    them. The cuts depend on names, dtypes and shapes only, never on values: the same tensors make
    the same shards (a re-upload stores nothing new), and a fine-tune changes only the shards of
    the tensors it changed."""
    entries = [(name, dtype_name(t.dtype), list(t.shape), t.numel() * t.element_size()) for name, t in tensors]
    _, layout = header_bytes(entries, None)
    by_name = dict(tensors)
    total = sum(entry[3] for entry in entries)
    count = max(1, -(-total // shard_size))
    target = total / count
    shards: list[list[tuple[str, torch.Tensor]]] = [[]]
    size = 0
    for name, begin, end in layout:
        nbytes = end - begin
        if shards[-1] and (size + nbytes > shard_size or size >= target):
            shards.append([])
            size = 0
        shards[-1].append((name, by_name[name]))
        size += nbytes
    return shards


def write_sharded(directory: Path, tensors: list[tuple[str, torch.Tensor]], metadata: dict[str, str], shard_size: int) -> dict[str, str]:
    """Write the tensors as one ``model.safetensors``-style file per shard (several at once: each
    is written and hashed on its own threads, the largest first so that no thread is left with a
    big one at the end) and the index; returns ``{shard file: sha256}``."""
    shards = plan_shards(tensors, shard_size)
    names = [shard_name(i + 1, len(shards)) for i in range(len(shards))]
    from concurrent.futures import ThreadPoolExecutor

    largest_first = sorted(zip(names, shards, strict=True), key=lambda job: -sum(t.numel() * t.element_size() for _, t in job[1]))
    with ThreadPoolExecutor(min(len(shards), os.cpu_count() or 1)) as pool:
        sha256s = pool.map(lambda job: write(directory / job[0], job[1], metadata), largest_first)
        written = dict(zip([name for name, _ in largest_first], sha256s, strict=True))
    digests = [written[name] for name in names]
    index = {
        "metadata": {"total_size": sum(t.numel() * t.element_size() for _, t in tensors)},
        "weight_map": {name: file for file, shard in zip(names, shards, strict=True) for name, _ in shard},
    }
    (directory / INDEX).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return dict(zip(names, digests, strict=True))


class _File:
    """A plain local file, as a :class:`Reader` source (random access)."""

    def __init__(self, path: Path):
        self.path, self.name = path, path.name
        self._file = open(path, "rb", buffering=0)
        self.size = os.fstat(self._file.fileno()).st_size
        self.position = 0

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view):
            n = self._file.readinto(view[done:])
            if not n:
                break
            done += n
        self.position += done
        return done

    def skip(self, n: int) -> None:
        self.seek(self.position + n)

    def seek(self, position: int) -> None:
        self._file.seek(position)
        self.position = position

    def finish(self) -> None:
        pass

    def close(self) -> None:
        self._file.close()


class Reader:
    """An open safetensors file: its header, and tensors read one at a time without ``mmap``.

    ``source`` is a path, or a stream the core verifies as it is read
    (``VersionFiles.open``: ``readinto``, ``skip``, ``finish``, ``size``, ``name``, read front to
    back). From such a stream, tensors must be read in file order (:meth:`keys`); those skipped
    are read past, and :meth:`finish` reads the rest and raises ``IntegrityError`` unless every
    byte was the recorded one.
    """

    def __init__(self, source: Path | Any):
        _check_little_endian()
        self._file = _File(Path(source)) if isinstance(source, (str, os.PathLike)) else source
        self.name = self._file.name
        try:
            self.metadata, self.entries, self._data_start = self._parse()
        except BaseException:
            self._file.close()
            raise

    def _parse(self) -> tuple[dict[str, str], dict[str, dict[str, Any]], int]:
        size = self._file.size
        head = self._read_exactly(8)
        if len(head) != 8:
            raise FormatError(self.name, "too short to hold a safetensors header length")
        (n,) = struct.unpack("<Q", head)
        if n > MAX_HEADER:
            raise FormatError(self.name, f"header length {n} is over the {MAX_HEADER} byte limit")
        if 8 + n > size:
            raise FormatError(self.name, f"header length {n} runs past the end of the {size} byte file")
        header = _header(self.name, self._read_exactly(n))
        entries = validate(self.name, header, size - 8 - n)
        metadata = header.get("__metadata__", {})
        return metadata, entries, 8 + n

    def _read_exactly(self, n: int) -> bytes:
        buffer = bytearray(n)
        got = self._file.readinto(buffer)
        return bytes(buffer[:got])

    def finish(self) -> None:
        """Read past whatever is left (a verifying source checks the file's sha256 there)."""
        self._file.finish()

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
        position = self._data_start + begin
        if position != self._file.position:
            if position > self._file.position:
                self._file.skip(position - self._file.position)
            else:
                self._file.seek(position)  # only a plain file: a verifying stream is read front to back
        view = _buffer(tensor)
        if self._file.readinto(view) != len(view):
            raise FormatError(self.name, f"it ended inside tensor {name[:80]!r}")


# --- validation -------------------------------------------------------------------------------
# A stored file is untrusted: the header is checked as a whole, as the reference reader (the
# safetensors crate) does, before a single tensor is allocated. Every tensor owns its own bytes,
# so the memory a load takes is bounded by the file's size.


def _header(file: str, raw: bytes) -> dict[str, Any]:
    """The header's JSON object; duplicate keys and non-JSON numbers are refused (another reader
    could pick the other duplicate: one file, two models)."""
    if not raw.startswith(b"{"):
        raise FormatError(file, "the header is not a JSON object")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) != len(items):
            raise FormatError(file, "the header repeats a key")
        return out

    def constant(name: str) -> Any:
        raise FormatError(file, f"the header holds {name}, which is not JSON")

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
        json.dumps(header, ensure_ascii=False).encode()  # lone surrogates (\ud800) cannot name anything
    except (UnicodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, FormatError):
            raise
        raise FormatError(file, f"the header is not valid UTF-8 JSON ({str(exc)[:100]})") from None
    if not isinstance(header, dict):
        raise FormatError(file, "the header is not a JSON object")
    return header


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(file: str, header: dict[str, Any], data_size: int) -> dict[str, dict[str, Any]]:
    """The tensor entries of a parsed header whose data section holds ``data_size`` bytes.

    Checks what the reference reader checks: ``__metadata__`` maps strings to strings; each entry
    has a known ``dtype``, a ``shape`` of non-negative ints and ``data_offsets`` whose length is
    ``dtype size x product(shape)``; sorted by offset, the tensors tile the data section exactly,
    from 0 to its end, without gaps or overlaps (so no two tensors share bytes).
    """
    metadata = header.get("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise FormatError(file, "__metadata__ is not an object of strings")
    entries: dict[str, dict[str, Any]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"tensor {name[:80]!r}"
        if not isinstance(entry, dict):
            raise FormatError(file, f"{where} is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in DTYPES:
            raise FormatError(file, f"{where} has an unknown dtype {str(dtype)[:20]!r}")
        if not isinstance(shape, list) or not all(_int(d) and d >= 0 for d in shape):
            raise FormatError(file, f"{where} has a shape that is not a list of non-negative integers")
        if not isinstance(offsets, list) or len(offsets) != 2 or not all(_int(x) for x in offsets):
            raise FormatError(file, f"{where} has data_offsets that are not two integers")
        begin, end = offsets
        if not 0 <= begin <= end <= data_size:
            raise FormatError(file, f"{where} has data_offsets {offsets} outside the {data_size} byte data section")
        # Dimensions multiply within int64 (torch's sizes and strides), zeros aside: [0, 2**62, 4] is empty, but its strides overflow.
        numel, extent = 1, 1
        for d in shape:
            numel *= d
            extent *= max(d, 1)
            if extent > MAX_ELEMENTS:
                raise FormatError(file, f"{where} has a shape whose size overflows")
        itemsize = DTYPES[dtype].itemsize
        if numel * itemsize != end - begin:
            raise FormatError(file, f"{where} has {end - begin} bytes of data for {numel} elements of {dtype}")
        entries[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [begin, end], "torch_dtype": DTYPES[dtype]}
    position = 0
    for name, entry in sorted(entries.items(), key=lambda item: item[1]["data_offsets"]):
        begin, end = entry["data_offsets"]
        if begin != position:
            problem = "overlaps the tensor before it" if begin < position else f"leaves a gap of {begin - position} bytes before it"
            raise FormatError(file, f"tensor {name[:80]!r} at data_offsets {[begin, end]} {problem}")
        position = end
    if position != data_size:
        raise FormatError(file, f"the tensors end at byte {position} of the {data_size} byte data section")
    return entries
