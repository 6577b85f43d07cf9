"""What every import from another model registry shares (:mod:`.legacy`, ``modelstore-mlflow``).

An importer reads the other registry, decides for each of its models what flavor its files map to
(a plugin of this project that reads them as they are, or raw files), and commits each one as a
version through :meth:`~modelstore_core.upload.Uploader.upload`, with its own description under a
key of the record's metadata. A re-run skips what an earlier run committed: each importer names
its models by an id recorded in the version (:func:`imported_versions`).
"""

from __future__ import annotations

import ast
import io
import pickletools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .flavor import Flavor
from .protocol import read
from .replicate import CopyReport
from .upload import RawFiles

if TYPE_CHECKING:
    from .store import ModelStore

#: File names that mark a file whose loading can run code (its first bytes are checked too); a
#: ``torch.export`` archive (``.pt2``) holds ``torch.save`` pickles (sample inputs, constants).
PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle", ".pt", ".pth", ".pt2", ".p", ".sav", ".dill", ".cloudpickle")

#: The classes modelstore-xgboost rebuilds (its ``CLASSES``; the core imports no plugin).
XGBOOST_CLASSES = ("Booster", "XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
#: The files of a transformers model folder as ``save_pretrained`` writes it with safetensors
#: weights (no tokenizer, processor, pickled or TensorFlow weights): what modelstore-transformers reads.
TRANSFORMERS_MODEL_FILES = re.compile(
    r"config\.json|generation_config\.json|model(-[0-9]{5}-of-[0-9]{5})?\.safetensors|model\.safetensors\.index\.json"
)


@dataclass
class ImportReport(CopyReport):
    """What an import did: ``copied`` holds the new versions, ``skipped`` those imported before."""

    #: what the user should know about imported versions (pickles, raw files, unmapped states)
    notes: list[str] = field(default_factory=list)


class ImportedFiles(RawFiles):
    """Files of another registry, stored as they are (under the names given), with the flavor they map to."""

    def __init__(self, paths: list[Path], flavor: Flavor, names: dict[str, Path] | None = None):
        super().__init__(paths)
        self._flavor = flavor
        self._names = names

    def flavor(self) -> Flavor:
        if self._names is None:
            self._flavor.files = super().flavor().files
        else:  # stored names chosen by the importer (checked by the upload like any other)
            self._flavor.files = dict(self._names)
        return self._flavor


def imported_versions(target: ModelStore, domain: str, identify: Callable[[dict[str, Any]], str | None]) -> dict[str, int]:
    """``{id: version}`` for the versions of ``domain`` in ``target`` that ``identify(record
    document)`` names (the id of what an earlier import made them from; ``None``: not imported).
    Reads each record of the domain once."""
    numbers = [n for n, _ in read.versions_if_any(target.storage, domain)]
    records, _ = read.read_records(target.storage, [(domain, n) for n in numbers])
    found: dict[str, int] = {}
    for record in records:
        key = identify(record.document)
        if isinstance(key, str):
            found.setdefault(key, record.version)
    return found


def is_pickle(path: Path) -> bool:
    """Whether loading the file can unpickle: by its name, or by its content (read, never loaded):
    a pickle of any protocol (:func:`_pickle_at_start`); torch's zip format (``torch.save`` since
    torch 1.6, ``pytorch_model.bin`` of transformers), whose first member is the pickle
    ``<archive>/data.pkl``; a ``.npy`` file of an array with objects (numpy pickles them); or a
    compressed stream, as ``joblib.dump(..., compress=...)`` writes (zlib, gzip, bz2, xz, lzma),
    that holds a pickle. An lz4 frame (joblib's other compressor) counts as one unread."""
    if path.name.lower().endswith(PICKLE_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(PICKLE_WINDOW + 1)
    except OSError:
        return False
    if len(head) >= 30 and head[:4] == b"PK\x03\x04":  # a zip's first local file header
        name_length = int.from_bytes(head[26:28], "little")
        return head[30 : 30 + name_length].endswith(b".pkl")
    if head.startswith(NPY_MAGIC):
        return _npy_holds_objects(head)
    if head.startswith(LZ4_MAGIC):
        return True
    inflated = _inflated_start(path, head)
    if inflated is not None:
        return _pickle_at_start(*inflated)
    return _pickle_at_start(head[:PICKLE_WINDOW], len(head) <= PICKLE_WINDOW)


#: How much of a file (or of a compressed file's content) is read to tell a pickle.
PICKLE_WINDOW = 64 << 10
NPY_MAGIC = b"\x93NUMPY"
LZ4_MAGIC = b"\x04\x22\x4d\x18"


def _pickle_at_start(head: bytes, whole: bool) -> bool:
    """Whether ``head``, a file's first bytes (``whole``: all of them), is a pickle. Protocols 2 to 5
    say so in their first two bytes; any protocol's opcodes (0 and 1 have no header) are checked
    with :func:`pickletools.dis`, which reads them and simulates the stack without building
    anything: a pickle parses to its STOP, or (a longer file) to the end of ``head`` after a few
    opcodes."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    stream, listing = io.BytesIO(head), io.StringIO()
    try:
        pickletools.dis(stream, out=listing)
        return True
    except Exception:  # noqa: BLE001 - whatever the parser makes of arbitrary bytes: not a pickle, unless cut short
        return not whole and stream.tell() >= len(head) and listing.getvalue().count("\n") >= 3


def _npy_holds_objects(head: bytes) -> bool:
    """Whether a ``.npy`` file (``head``: its start) holds Python objects: its header's ``descr`` has
    the object kind ``O`` (numpy pickles such arrays). A header that does not parse counts as one."""
    major = head[6] if len(head) > 6 else 0
    size_bytes = 2 if major == 1 else 4
    start = 8 + size_bytes
    length = int.from_bytes(head[8:start], "little")
    try:
        header = ast.literal_eval(head[start : start + length].decode("utf-8" if major >= 3 else "latin-1"))
        return _has_objects(header["descr"])
    except Exception:  # noqa: BLE001 - a header numpy would not read either: assume the worst
        return True


def _has_objects(descr: Any) -> bool:
    """Whether a numpy ``descr`` (a type string, or a list of ``(name, descr[, shape])``) has the kind ``O``."""
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, list):
        return any(_has_objects(field[1]) if isinstance(field, tuple) and len(field) >= 2 else True for field in descr)
    return True


def _inflated_start(path: Path, head: bytes) -> tuple[bytes, bool] | None:
    """The first :data:`PICKLE_WINDOW` bytes of a compressed file's content and whether that is all of
    it, for the compressors joblib writes (told by their magic numbers); ``None`` for any other
    file, or one that does not decompress (then it is judged as it is)."""
    import bz2
    import gzip
    import lzma
    import zlib

    if head.startswith(b"\x1f\x8b"):
        opener = gzip.open
    elif head.startswith(b"BZh"):
        opener = bz2.open
    elif head.startswith(b"\xfd7zXZ\x00") or head.startswith(b"\x5d\x00\x00"):
        opener = lzma.open
    elif len(head) >= 2 and head[0] == 0x78 and (head[0] << 8 | head[1]) % 31 == 0:  # a zlib stream's header
        opener = None
    else:
        return None
    try:
        if opener is not None:
            with opener(path, "rb") as f:
                data = f.read(PICKLE_WINDOW + 1)
            whole = len(data) <= PICKLE_WINDOW
        else:
            inflater = zlib.decompressobj()
            data = inflater.decompress(head, PICKLE_WINDOW + 1)
            whole = inflater.eof and len(data) <= PICKLE_WINDOW
    except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
        return None
    return data[:PICKLE_WINDOW], whole
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if len(head) >= 30 and head[:4] == b"PK\x03\x04":  # a zip's first local file header
        name_length = int.from_bytes(head[26:28], "little")
        return head[30 : 30 + name_length].endswith(b".pkl")
    return False
