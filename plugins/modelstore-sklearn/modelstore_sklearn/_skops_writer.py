"""Writing a skops archive without skops, for the objects :mod:`._skops_reader` builds, and the
canonical form of every archive this plugin stores.

For those objects, :func:`archive` writes the schema skops 0.10+ writes (protocol 2), node for
node, so that ``skops.io.load`` reads it and :func:`canonical` of skops's own bytes for the same
model gives the same archive. A model holding anything else returns ``None``: skops writes it.

The canonical form: skops names objects and their ``.npy`` members after ``id(obj)`` (memory
addresses) and stamps each zip entry with the time. Both are renumbered in order of first
appearance in the schema (ids from 1: skops ignores an id of 0), the members written in that
order with a fixed date, then ``schema.json`` as compact JSON. The object graph is unchanged:
equal ids stay equal, distinct ids distinct.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import PurePosixPath
from typing import Any

from ._checks import TREE
from ._skops import is_sklearn_estimator
from ._skops_reader import (
    BUILTIN_TYPES,
    JSON_TYPES,
    LOSS_TYPES,
    OBJECT_TYPES,
    PROTOCOL,
    RANDOM_STATE,
    is_key_type,
    numpy_scalar_types,
    read_npy,
)

SCHEMA = "schema.json"
#: Fixed zip entry attributes, so that the archive's bytes depend only on its contents.
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


class Unsupported(Exception):
    """An object :mod:`._skops_reader` does not build: skops writes the model."""


class Archive:
    """A canonical skops archive before it is written: its schema and its ``.npy`` members, both
    renumbered (see :func:`renumber`)."""

    def __init__(self, schema: dict, members: dict[str, Any]):
        renamed = renumber(schema, members)
        if renamed is None:
            raise ValueError("a member of the archive is not referenced by its schema")
        self.schema = schema
        self.members = {new: members[old] for old, new in renamed.items()}  # in order of first reference

    def write(self, out: Any) -> None:
        """Write the archive to the binary file ``out``."""
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in self.members.items():
                _write(archive, name, data)
            _write(archive, SCHEMA, json.dumps(self.schema, separators=(",", ":")).encode())

    def to_bytes(self) -> bytes:
        out = io.BytesIO()
        self.write(out)
        return out.getvalue()


def archive(model: Any) -> Archive | None:
    """``model`` as a skops archive, or ``None`` when it holds an object this module does not write."""
    import skops  # its version only: ``skops.io`` is not imported

    writer = _Writer()
    try:
        schema = writer.state(model)
    except Unsupported:
        return None
    schema["protocol"] = PROTOCOL
    schema["_skops_version"] = skops.__version__
    return Archive(schema, writer.members)


def canonical(data: bytes) -> bytes:
    """A skops archive (skops's own bytes) in the canonical form; an archive whose members are
    not all referenced the way this expects is returned unchanged (correct, only not deduplicated)."""
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        members = {name: _npy_without_padding(src.read(name)) for name in src.namelist() if name != SCHEMA}
        schema = json.loads(src.read(SCHEMA))
    try:
        return Archive(schema, members).to_bytes()
    except ValueError:
        return data


def _npy_without_padding(member: bytes) -> bytes:
    """A ``.npy`` member of a structured dtype written again by :func:`without_padding`; any other member unchanged."""
    if not member.startswith(b"\x93NUMPY") or b"'descr': [" not in member[:200]:
        return member
    import numpy as np

    try:
        array = read_npy(memoryview(member))
    except Exception:  # noqa: BLE001 - not an array this module reads: kept as skops wrote it
        return member
    out = io.BytesIO()
    np.save(out, without_padding(array), allow_pickle=False)
    return out.getvalue()


def renumber(schema: dict, members: dict[str, Any]) -> dict[str, str] | None:
    """Renumber ``schema``'s ids and member names in place, in order of first appearance; returns
    {old member name: new name}, or ``None`` (``schema`` then unchanged) unless each member is
    referenced."""
    ids: dict[int, int] = {}
    files: dict[str, str] = {}
    edits: list[tuple[dict, str, Any]] = []

    def walk(node: Any) -> None:  # JSON values: only dicts and lists hold more (a call per leaf doubled the time)
        if type(node) is dict:
            for key, value in node.items():
                if key == "__id__" and type(value) is int:
                    edits.append((node, key, ids.setdefault(value, len(ids) + 1)))
                elif key == "file" and type(value) is str and value in members:
                    edits.append((node, key, files.setdefault(value, f"{len(files) + 1}{PurePosixPath(value).suffix}")))
                elif type(value) is dict or type(value) is list:
                    walk(value)
        else:
            for item in node:
                if type(item) is dict or type(item) is list:
                    walk(item)

    if type(schema) is dict or type(schema) is list:
        walk(schema)
    if set(files) != set(members):
        return None
    for node, key, value in edits:
        node[key] = value
    return files


def _write(archive: zipfile.ZipFile, name: str, data: Any) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    archive.writestr(info, data)


class _Writer:
    """skops's ``get_state``, for the objects :mod:`._skops_reader` builds. Each object's ``__id__``
    is its ``id``, as in skops; ``memo`` keeps every object alive until the end, so that no id is
    reused (what skops's ``SaveContext.memo`` does)."""

    def __init__(self) -> None:
        self.memo: dict[int, Any] = {}
        self.members: dict[str, bytes] = {}

    def state(self, obj: Any) -> dict:
        self.memo.setdefault(id(obj), obj)
        cls = type(obj)
        if cls in JSON_TYPES:
            res = {"__class__": "str", "__module__": "builtins", "__loader__": "JsonNode", "content": json.dumps(obj), "is_json": True}
        elif cls is dict:
            res = self._dict(obj)
        elif cls is list or cls is tuple:
            res = {
                "__class__": cls.__name__,
                "__module__": "builtins",
                "__loader__": "ListNode" if cls is list else "TupleNode",
                "content": [self.state(item) for item in obj],
            }
        elif cls is slice:
            if not all(type(v) in (int, type(None)) for v in (obj.start, obj.stop, obj.step)):
                raise Unsupported("a slice of other than integers")
            res = {
                "__class__": "slice",
                "__module__": "builtins",
                "__loader__": "SliceNode",
                "content": {"start": obj.start, "stop": obj.stop, "step": obj.step},
            }
        elif cls is type:
            res = self._type(obj)
        else:
            res = self._other(obj, cls)
        res["__id__"] = id(obj)
        return res

    def _dict(self, obj: dict) -> dict:
        key_types = [type(key) for key in obj]
        if not all(is_key_type(t) for t in key_types):
            raise Unsupported("a dict key that is not a string or an integer")
        keys = [key if type(key) in (str, int) else key.item() for key in obj]  # skops writes a numpy key's Python value
        if len({str(key) for key in keys}) != len(keys):
            raise Unsupported("dict keys that are equal as JSON keys")
        state_of_key_types = self.state(key_types)
        content = {key: self.state(value) for key, value in zip(keys, obj.values(), strict=True) if not isinstance(value, property)}
        return {
            "__class__": "dict",
            "__module__": "builtins",
            "__loader__": "DictNode",
            "content": content,
            "key_types": state_of_key_types,
        }

    def _type(self, obj: type) -> dict:
        name = f"{obj.__module__}.{obj.__name__}"
        if name not in BUILTIN_TYPES and name not in numpy_scalar_types():
            raise Unsupported(f"the type {name}")
        return {"__class__": obj.__name__, "__module__": obj.__module__, "__loader__": "TypeNode"}

    def _other(self, obj: Any, cls: type) -> dict:
        module = cls.__module__
        name = f"{module}.{cls.__name__}"
        if module == "numpy" or module.startswith("numpy."):
            return self._numpy(obj, cls)
        if name == TREE:
            return self._reduced(obj, cls, "TreeNode")
        if name in LOSS_TYPES:
            return self._reduced(obj, cls, "LossNode")
        if not _is_written_object(cls, name):
            raise Unsupported(f"an object of type {module}.{cls.__qualname__}")
        reduced = obj.__reduce__()  # skops writes an object rebuilt by its own constructor another way
        if len(reduced) >= 2 and reduced[0] is cls and all(item is None for item in reduced[2:]):
            raise Unsupported("an object rebuilt by its constructor")
        res = {"__class__": cls.__name__, "__module__": module, "__loader__": "ObjectNode"}
        if hasattr(obj, "__getstate__"):
            res["content"] = self.state(obj.__getstate__())
        elif hasattr(obj, "__dict__"):
            res["content"] = self.state(obj.__dict__)
        return res

    def _reduced(self, obj: Any, cls: type, loader: str) -> dict:
        """skops's ``TreeNode`` and ``LossNode``: the arguments of ``cls(...)``, then the state
        ``__setstate__`` takes."""
        reduced = obj.__reduce__()
        if reduced[0] is not cls:
            raise Unsupported(f"{cls.__name__} is not rebuilt by its constructor")
        res = {"__class__": cls.__name__, "__module__": cls.__module__, "__reduce__": {"args": self.state(reduced[1])}}
        if len(reduced) == 3:
            attrs = reduced[2]
        elif hasattr(obj, "__getstate__"):
            attrs = obj.__getstate__() or {}
        else:
            attrs = getattr(obj, "__dict__", {})
        if not isinstance(attrs, (dict, tuple)):
            raise Unsupported(f"the state of {cls.__name__}")
        res["content"] = self.state(attrs)
        res["__loader__"] = loader
        return res

    def _numpy(self, obj: Any, cls: type) -> dict:
        import numpy as np

        if isinstance(obj, np.dtype):
            return {"__class__": "dtype", "__module__": "numpy", "__loader__": "DTypeNode", "content": self.state(np.ndarray(0, dtype=obj))}
        if cls is np.random.RandomState:
            return {
                "__class__": "RandomState",
                "__module__": RANDOM_STATE.rpartition(".")[0],
                "__loader__": "RandomStateNode",
                "content": self.state(obj.get_state(legacy=False)),
            }
        if cls is not np.ndarray and f"numpy.{cls.__name__}" not in numpy_scalar_types():
            raise Unsupported(f"a numpy {cls.__name__}")
        res = {"__class__": cls.__name__, "__module__": "numpy", "__loader__": "NdArrayNode"}
        if obj.dtype == object:
            if cls is not np.ndarray or obj.ndim == 0:
                raise Unsupported("an object scalar")
            res["content"] = self.state(obj.tolist())["content"]
            res["type"] = "json"
            res["shape"] = self.state(obj.shape)
            return res
        name = f"{id(obj)}.npy"
        if name not in self.members:
            buffer = io.BytesIO()
            try:
                np.save(buffer, without_padding(obj), allow_pickle=False)
            except ValueError as exc:  # a dtype holding objects
                raise Unsupported(str(exc)) from exc
            self.members[name] = buffer.getvalue()
        res.update(type="numpy", file=name)
        return res


def _is_written_object(cls: type, name: str) -> bool:
    """A class skops writes as an ``ObjectNode`` that :mod:`._skops_reader` rebuilds: a public
    scikit-learn estimator (not ``Birch``, which skops refuses) or one of its ``OBJECT_TYPES``."""
    import sys

    return (
        (name in OBJECT_TYPES or is_sklearn_estimator(name))
        and getattr(sys.modules.get(cls.__module__), cls.__name__, None) is cls
        and name != "sklearn.cluster._birch.Birch"
    )


def without_padding(array: Any) -> Any:
    """``array``, with the bytes between the fields of a structured dtype set to zero. A tree's
    ``nodes`` records hold 7 such bytes each, left as they were in memory: equal trees would
    otherwise give different bytes (and ``numpy.load`` does not keep them)."""
    import numpy as np

    dtype = array.dtype
    if dtype.names is None:
        return array
    covered = np.zeros(dtype.itemsize, dtype=bool)
    for field in dtype.names:
        field_dtype, offset = dtype.fields[field][:2]
        covered[offset : offset + field_dtype.itemsize] = True
    if covered.all():
        return array
    clean = np.array(array, order="C")  # a copy, of the same shape (0-d included)
    clean.reshape(-1).view(np.uint8).reshape(-1, dtype.itemsize)[:, ~covered] = 0
    return clean
