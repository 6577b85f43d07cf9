"""Checks on a ``.keras`` zip read back from a store, before Keras opens it.

A stored file is untrusted input: anyone with write access to the bucket can store a zip whose
``config.json`` inflates from kilobytes to gigabytes (Keras reads it whole into memory and parses
it), whose entries overlap or multiply (Keras extracts every entry of a model with assets to
disk), or whose names leave the directory they are extracted to. Keras' own guard only refuses
entries over 4 GiB. The limits here follow from what ``model.save`` writes: a handful of entries,
all stored uncompressed (a compression ratio of 1), small JSON entries and one weights file
about the size of the archive.

Keras also builds every layer ``config.json`` describes, allocating its variables, before it reads
a weight: ``units: 30000`` over a weights file of 4-unit layers allocates 10.8 GB before failing.
So the model is first built from the config on torch's ``meta`` device (shapes, no memory), and
its variables' size compared with the weights the archive holds (:func:`check_model_size`).
"""

from __future__ import annotations

import json
import math
import re
import zipfile
import zlib
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import CorruptArtifactError

MAX_ENTRIES = 10_000
MAX_CENTRAL_DIRECTORY = 4 * 2**20  # parsed into ZipInfo objects (~10x its size) before any other check can run
#: JSON entries this plugin reads itself, with their size limits (Keras parses config.json in memory).
JSON_LIMITS = {"config.json": 16 * 2**20, "metadata.json": 2**20}
MAX_RATIO = 100  # declared / compressed size; Keras stores entries (1:1), DEFLATE peaks near 1032:1
RATIO_FLOOR = 2**20  # smaller entries may compress as well as they like
TOTAL_PER_BYTE, TOTAL_FLOOR, TOTAL_CAP = 20, 64 * 2**20, 64 * 2**30  # declared bytes in all: <= 20 x file + 64 MiB, <= 64 GiB
METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED}  # what Keras and zip tools write; no bzip2/lzma ratios
LOCAL_HEADER = 30  # fixed part of a local file header
#: how much more memory than the archive's weights (and assets) the variables of the model its config
#: describes may take: a saved model's variables are all in its weights file (float32 as float32),
#: so 2x and 64 MiB leave room for formats that pack values while a config cannot ask for much more
SIZE_FACTOR, SIZE_SLACK = 2, 64 * 2**20


def check(path: Path) -> None:
    """Refuse ``path`` unless it is a ``.keras`` zip within the limits above.

    :raises CorruptArtifactError: naming the file and the check that failed.
    """
    file = Path(path).name

    def refuse(problem: str) -> CorruptArtifactError:
        return CorruptArtifactError(file, problem)

    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        # The end record, read the way ZipFile reads it, bounds the central directory before it is parsed.
        end = zipfile._EndRecData(f)
        if end is None:
            raise refuse("it is not a zip archive")
        if end[zipfile._ECD_SIZE] > MAX_CENTRAL_DIRECTORY:
            raise refuse(f"its central directory of {end[zipfile._ECD_SIZE]} bytes is over the {MAX_CENTRAL_DIRECTORY} byte limit")
        if end[zipfile._ECD_ENTRIES_TOTAL] > MAX_ENTRIES:
            raise refuse(f"it declares {end[zipfile._ECD_ENTRIES_TOTAL]} entries, over the limit of {MAX_ENTRIES}")
    try:
        with zipfile.ZipFile(path) as zf:
            _check_entries(zf, size, refuse)
            docs = {name: _read_json(zf, zf.getinfo(name), refuse) for name in JSON_LIMITS if name in zf.NameToInfo}
            stored = sum(info.file_size for info in zf.infolist() if info.filename not in JSON_LIMITS)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, zlib.error) as exc:
        raise refuse(f"it is not a readable zip archive ({str(exc)[:100]})") from None
    check_model_size(docs["config.json"], stored, refuse)


def check_model_size(config: dict[str, Any], stored: int, refuse) -> None:
    """Refuse a config whose model's variables take more than :data:`SIZE_FACTOR` times the
    ``stored`` bytes of weights and assets plus :data:`SIZE_SLACK`.

    The model is built as ``load_model`` builds it (``deserialize_keras_object``, without its
    compile config, in safe mode) on torch's ``meta`` device. Where the whole model cannot be built
    so (a class the caller passes as ``custom_objects``, a ``Lambda`` layer's code that only
    ``trust=True`` runs), each layer Keras can build is built alone and counted; the caller's own
    layer classes are the caller's code, and are not sized. Only the torch backend has a device
    that allocates nothing; on other backends the check is not made.
    """
    import keras

    if keras.backend.backend() != "torch":
        return
    with keras.device("meta"):
        variables = _variables(config, keras)
    needed = sum(math.prod(v.shape) * _itemsize(v.dtype) for v in {id(v): v for v in variables}.values())
    if needed > SIZE_FACTOR * stored + SIZE_SLACK:
        raise refuse(
            f"config.json describes variables of {needed} bytes, but the archive's weights hold {stored} bytes:"
            " loading it would allocate what the weights do not hold"
        )


def _variables(config: Any, keras: Any) -> list[Any]:
    """The variables of the object ``config`` describes, built on the current device; where it cannot
    be built whole, those of the layers it lists (``config.layers``) that can, recursively."""
    try:
        from keras.src.saving.serialization_lib import ObjectSharingScope  # shared layers built once, as load_model does
    except ImportError:  # pragma: no cover - a Keras that moved it: shared layers are counted once per use
        ObjectSharingScope = nullcontext
    if not isinstance(config, dict):
        return []
    try:
        with ObjectSharingScope():
            built = keras.saving.deserialize_keras_object({**config, "compile_config": None}, safe_mode=True)
        return list(getattr(built, "variables", []))
    except Exception:
        layers = (config.get("config") or {}).get("layers") if isinstance(config.get("config"), dict) else None
        return [v for layer in layers or [] for v in _variables(layer, keras)] if isinstance(layers, list) else []


def _itemsize(dtype: Any) -> int:
    """Bytes per value of a Keras dtype name (``float32``, ``bfloat16``, ``int4`` a whole byte, ``bool`` 1)."""
    bits = re.search(r"\d+", str(dtype))
    return max(1, int(bits.group(0)) // 8) if bits else 1


def _check_entries(zf: zipfile.ZipFile, size: int, refuse) -> None:
    infos = zf.infolist()
    if len(infos) > MAX_ENTRIES:
        raise refuse(f"it holds {len(infos)} entries, over the limit of {MAX_ENTRIES}")
    if "config.json" not in zf.NameToInfo:
        raise refuse("it has no config.json")
    seen: set[str] = set()
    total = 0
    total_cap = min(TOTAL_CAP, TOTAL_PER_BYTE * size + TOTAL_FLOOR)
    for info in infos:
        name = info.orig_filename
        where = f"entry {name[:80]!r}"
        if name in seen:
            raise refuse(f"{where} appears twice (readers disagree on which one is meant)")
        seen.add(name)
        parts = name.removesuffix("/").split("/") if info.is_dir() else name.split("/")
        if name.startswith(("/", "\\")) or "\\" in name or "\0" in name or ":" in parts[0] or any(p in ("", ".", "..") for p in parts):
            raise refuse(f"{where} is not a plain relative path")
        if info.compress_type not in METHODS:
            raise refuse(f"{where} uses compression method {info.compress_type}, not stored or deflated")
        if info.flag_bits & 0x1:
            raise refuse(f"{where} is encrypted")
        limit = JSON_LIMITS.get(name)
        if limit is not None and info.file_size > limit:
            raise refuse(f"{where} declares {info.file_size} bytes, over the {limit} byte limit for it")
        if info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * info.compress_size:
            raise refuse(f"{where} declares {info.file_size} bytes from {info.compress_size}, a compression ratio over {MAX_RATIO}")
        total += info.file_size
        if total > total_cap:
            raise refuse(f"its entries declare over {total_cap} bytes in all, from a {size} byte archive")
    # Each entry's data lies between its local header and the next one: entries that share bytes
    # multiply what a small archive inflates to.
    position = 0
    for info in sorted(infos, key=lambda i: i.header_offset):
        if info.header_offset < position:
            raise refuse(f"entry {info.orig_filename[:80]!r} overlaps the entry before it")
        name_length = len(info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437", errors="replace"))
        position = info.header_offset + LOCAL_HEADER + name_length + info.compress_size
    if position > size:
        raise refuse("its last entry runs past the end of the archive")


def _read_json(zf: zipfile.ZipFile, info: zipfile.ZipInfo, refuse) -> dict[str, Any]:
    """Inflate ``info`` with a bounded reader and parse it: what it inflates to must be exactly its
    declared size (checked above) and a JSON object, which is returned."""
    chunks, read = [], 0
    with zf.open(info) as r:
        while chunk := r.read(min(1 << 16, info.file_size - read + 1)):
            read += len(chunk)
            if read > info.file_size:
                raise refuse(f"entry {info.filename!r} inflates past its declared {info.file_size} bytes")
            chunks.append(chunk)
    if read != info.file_size:
        raise refuse(f"entry {info.filename!r} inflates to {read} bytes, not its declared {info.file_size}")
    try:
        doc = json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise refuse(f"entry {info.filename!r} is not JSON") from None
    if not isinstance(doc, dict):
        raise refuse(f"entry {info.filename!r} is not a JSON object")
    return doc
