"""What every import from another model registry shares (:mod:`.legacy`, ``modelstore-mlflow``).

An importer reads the other registry, decides for each of its models what flavor its files map to
(a plugin of this project that reads them as they are, or raw files), and commits each one as a
version through :meth:`~modelstore_core.upload.Uploader.upload`, with its own description under a
key of the record's metadata. A re-run skips what an earlier run committed: each importer names
its models by an id recorded in the version (:func:`imported_versions`).
"""

from __future__ import annotations

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
    """Whether the file's name or first bytes say pickle: a pickle (protocol 2 to 5), or torch's
    zip format (``torch.save`` since torch 1.6, ``pytorch_model.bin`` of transformers), whose
    first member is the pickle ``<archive>/data.pkl``."""
    if path.name.lower().endswith(PICKLE_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(30 + 1024)
    except OSError:
        return False
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return True
    if len(head) >= 30 and head[:4] == b"PK\x03\x04":  # a zip's first local file header
        name_length = int.from_bytes(head[26:28], "little")
        return head[30 : 30 + name_length].endswith(b".pkl")
    return False
