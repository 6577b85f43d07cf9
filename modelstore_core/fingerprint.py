"""Data fingerprints: which data a version was trained or evaluated on, without storing it.

``upload(..., data={"train": X_train, "test": "data/test.parquet"})`` records, per dataset, its
kind, shape, column names and dtypes, and a sha256 of its content, under the record's ``data``
key. Two versions whose ``train`` has the same sha256 were trained on the same data.

What the sha256 covers, by kind (each prefixed with a header of kind, shape and dtypes, so the
same bytes read as another dtype or shape differ):

* ``dataframe`` (pandas): the column names and, per row, pandas' own stable row hash
  (``pandas.util.hash_pandas_object``, values only, the index left out: shuffling rows changes
  it, renumbering them does not);
* ``array`` (numpy) and ``tensor`` (torch): the raw bytes of the elements in C order;
* ``file``: the file's bytes (its name is recorded, never its directory);
* ``directory``: each file's relative path and sha256, in sorted order.

pandas, numpy and torch are never imported here: the objects passed in bring their own.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from .errors import InvalidNameError, UsageError
from .hashing import hash_file
from .input_signature import dtype_name, frame_columns, is_array, is_dataframe
from .names import check_name

#: A directory fingerprint covers at most this many files.
MAX_FILES = 100_000


def fingerprints(data: Any) -> dict[str, dict[str, Any]]:
    """The ``data`` argument of ``upload``: a dict of dataset names to DataFrames, arrays, tensors or paths."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError(f"data= must be a dict of names to datasets ({{'train': X_train}}), not {type(data).__name__}")
    out = {}
    for name, value in data.items():
        try:
            check_name(name, "dataset name")
        except InvalidNameError as exc:
            raise UsageError(str(exc)) from None
        out[name] = fingerprint(value, name)
    return out


def fingerprint(value: Any, name: str = "dataset") -> dict[str, Any]:
    """One dataset's fingerprint: ``{"kind", "sha256", "shape", "columns", "dtypes", "bytes", "files"}`` (as apply)."""
    if is_dataframe(value):
        return _frame(value)
    if is_array(value):
        return _tensor(value) if type(value).__module__.split(".")[0] == "torch" else _array(value, name)
    if isinstance(value, (str, os.PathLike)):
        return _path(Path(value))
    raise UsageError(
        f"data[{name!r}] is a {type(value).__module__}.{type(value).__qualname__}: pass a pandas DataFrame, a numpy array,"
        " a torch tensor, or the path of a file or directory"
    )


def _header(kind: str, shape: list[int], dtypes: list[str], columns: list[str] | None = None) -> bytes:
    return json.dumps({"kind": kind, "shape": shape, "dtypes": dtypes, "columns": columns}, separators=(",", ":")).encode() + b"\n"


def _frame(frame: Any) -> dict[str, Any]:
    import pandas  # the caller passed a DataFrame: pandas is there

    columns = frame_columns(frame)
    names, dtypes = [n for n, _ in columns], [d for _, d in columns]
    shape = [int(d) for d in frame.shape]
    digest = hashlib.sha256(_header("dataframe", shape, dtypes, names))
    rows = pandas.util.hash_pandas_object(frame, index=False).to_numpy()
    digest.update(memoryview(rows.astype("<u8", copy=False)).cast("B"))
    return {"kind": "dataframe", "shape": shape, "columns": names, "dtypes": dtypes, "sha256": digest.hexdigest()}


def _array(array: Any, name: str) -> dict[str, Any]:
    if array.dtype.hasobject:
        raise UsageError(
            f"data[{name!r}] is a numpy array of Python objects, which have no stable bytes to hash:"
            " pass it as a pandas DataFrame (pandas.DataFrame(X)) or the file it came from"
        )
    shape, dtype = [int(d) for d in array.shape], dtype_name(array.dtype)
    digest = hashlib.sha256(_header("array", shape, [dtype]))
    contiguous = array if array.flags.c_contiguous else array.copy(order="C")
    digest.update(memoryview(contiguous.reshape(-1).view("u1")))
    return {"kind": "array", "shape": shape, "dtypes": [dtype], "bytes": int(array.nbytes), "sha256": digest.hexdigest()}


def _tensor(tensor: Any) -> dict[str, Any]:
    import torch  # the caller passed a tensor: torch is there

    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    shape, dtype = [int(d) for d in tensor.shape], dtype_name(tensor.dtype)
    digest = hashlib.sha256(_header("tensor", shape, [dtype]))
    raw = flat.view(torch.uint8) if flat.numel() else flat.new_empty(0, dtype=torch.uint8)
    digest.update(memoryview(raw.numpy()))
    return {"kind": "tensor", "shape": shape, "dtypes": [dtype], "bytes": int(raw.numel()), "sha256": digest.hexdigest()}


def _path(path: Path) -> dict[str, Any]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if len(files) > MAX_FILES:
            raise UsageError(f"{path} holds more than {MAX_FILES} files: fingerprint a manifest of them instead")
        digest, total = hashlib.sha256(b"directory\n"), 0
        for file in files:
            sha256, size = hash_file(file)
            digest.update(f"{file.relative_to(path).as_posix()}\t{sha256}\n".encode())
            total += size
        return {"kind": "directory", "name": path.name, "files": len(files), "bytes": total, "sha256": digest.hexdigest()}
    if not path.is_file():
        raise UsageError(f"data: no such file or directory: {path}")
    sha256, size = hash_file(path)
    return {"kind": "file", "name": path.name, "bytes": size, "sha256": sha256}
