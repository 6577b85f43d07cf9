"""Input signatures: what a model expects (names, dtypes, shapes; never data), and checking an input against it.

A signature is stored under the record's ``signature`` key::

    {"format": "columns", "source": "feature_names_in_",
     "inputs": [{"name": "age", "dtype": "int64"}, {"name": "plan", "dtype": "category", "feature_type": "categorical"}]}
    {"format": "tensors", "source": "input_example",
     "inputs": [{"name": null, "dtype": "float32", "shape": [null, 3, 224, 224]}]}

``columns``: a table's named columns, in order (a dtype may be unknown: ``null``). ``tensors``: one
unnamed array or tensor, or a dict of them by name; a ``null`` size is any size (the first, batch,
dimension of an example is recorded as ``null``).

A flavor plugin that knows its model's input returns ``{"signature": ...}`` from
``modelstore_collect_metadata``, built with :func:`columns_signature` or :func:`tensors_signature`
(exported by :mod:`~modelstore_core.plugin_api`); ``upload(..., input_example=X)`` records the
example's instead, for any flavor.

Nothing here imports pandas, numpy or torch: objects are recognised by their module's name, and
only their own methods are called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .errors import UsageError


def _module(obj: Any) -> str:
    return (type(obj).__module__ or "").split(".")[0]


def is_dataframe(obj: Any) -> bool:
    return _module(obj) == "pandas" and hasattr(obj, "columns") and hasattr(obj, "dtypes")


def is_array(obj: Any) -> bool:
    """A numpy array or a torch tensor (or anything else from them with a shape and a dtype)."""
    return _module(obj) in ("numpy", "torch") and hasattr(obj, "shape") and hasattr(obj, "dtype")


def dtype_name(dtype: Any) -> str:
    """``float32`` for numpy's and torch's (``torch.float32``) alike."""
    return str(dtype).removeprefix("torch.")


def frame_columns(frame: Any) -> list[tuple[str, str]]:
    """``[(name, dtype)]`` of a pandas DataFrame's columns, in order."""
    return [(str(name), dtype_name(dtype)) for name, dtype in zip(frame.columns, frame.dtypes, strict=True)]


def columns_signature(
    names: list[str] | None, dtypes: list[str | None] | None = None, *, feature_types: dict[int, str] | None = None, source: str
) -> dict[str, Any]:
    """A ``columns`` signature: a table with these column ``names`` (in order), ``dtypes`` where
    known, and ``feature_types`` by column index (``{2: "categorical"}``)."""
    names = list(names or [])
    dtypes = list(dtypes) if dtypes is not None else [None] * len(names)
    if len(dtypes) != len(names):
        raise ValueError(f"{len(names)} column names but {len(dtypes)} dtypes")
    inputs = []
    for i, (name, dtype) in enumerate(zip(names, dtypes, strict=True)):
        entry: dict[str, Any] = {"name": str(name), "dtype": None if dtype is None else str(dtype)}
        if feature_types and i in feature_types:
            entry["feature_type"] = feature_types[i]
        inputs.append(entry)
    return {"format": "columns", "source": source, "inputs": inputs}


def tensors_signature(inputs: dict[str | None, tuple[list[int | None] | None, str | None]], *, source: str) -> dict[str, Any]:
    """A ``tensors`` signature: ``{name: (shape, dtype)}``; one unnamed input is keyed ``None``."""
    entries = [{"name": name, "dtype": dtype, "shape": None if shape is None else list(shape)} for name, (shape, dtype) in inputs.items()]
    return {"format": "tensors", "source": source, "inputs": entries}


def _example_shape(array: Any) -> list[int | None]:
    shape = [int(d) for d in array.shape]
    return [None, *shape[1:]] if shape else []  # the first dimension is the batch: any size


def signature_from_example(example: Any) -> dict[str, Any]:
    """The signature of an ``input_example``: a pandas DataFrame, a numpy array, a torch tensor or a
    dict of arrays/tensors (names, shapes and dtypes; nothing of the data)."""
    if is_dataframe(example):
        columns = frame_columns(example)
        return columns_signature([n for n, _ in columns], [d for _, d in columns], source="input_example")
    if is_array(example):
        return tensors_signature({None: (_example_shape(example), dtype_name(example.dtype))}, source="input_example")
    if isinstance(example, dict) and example and all(isinstance(k, str) and is_array(v) for k, v in example.items()):
        return tensors_signature(
            {name: (_example_shape(value), dtype_name(value.dtype)) for name, value in example.items()}, source="input_example"
        )
    raise UsageError(
        f"input_example= is a {type(example).__module__}.{type(example).__qualname__}: pass a pandas DataFrame, a numpy array,"
        " a torch tensor, or a dict of names to arrays/tensors (only names, shapes and dtypes are recorded)"
    )


def merge_signatures(example: dict[str, Any], flavor: dict[str, Any] | None) -> dict[str, Any]:
    """The example's signature, keeping what the flavor knew about the same columns (categorical...)."""
    if not flavor or example["format"] != "columns" or flavor.get("format") != "columns":
        return example
    known = {entry.get("name"): entry for entry in flavor.get("inputs", [])}
    for entry in example["inputs"]:
        feature_type = (known.get(entry["name"]) or {}).get("feature_type")
        if feature_type:
            entry["feature_type"] = feature_type
    return example


# --- checking an input --------------------------------------------------------------------------

_KINDS = (
    ("bool", ("bool", "boolean", "i")),  # xgboost's "i": an indicator
    ("float", ("float", "double", "half", "bfloat", "q")),  # xgboost's "q": quantitative
    ("int", ("int", "uint", "long", "short")),
    ("category", ("category", "c")),
    ("text", ("object", "str", "string")),
    ("datetime", ("datetime",)),
)


def dtype_kind(dtype: str | None) -> str | None:
    """The family of a dtype as numpy, pandas, torch or xgboost spell it: float, int, bool,
    category, text, datetime; anything else is its own kind."""
    if dtype is None:
        return None
    lower = dtype.lower()
    for kind, prefixes in _KINDS:
        if lower in prefixes or any(lower.startswith(p) for p in prefixes if len(p) > 1):
            return kind
    return lower


#: The other families a column's family accepts (a note, never a failure): ints and bools where
#: floats were recorded, bools where ints were, text and categories for each other.
WIDENING = {"float": {"int", "bool"}, "int": {"bool"}, "category": {"text"}, "text": {"category"}}


def compatible(expected: str | None, found: str | None) -> bool:
    """Whether a column of dtype ``found`` fits one recorded as ``expected``: the same family
    (float32 and float64 alike), one of :data:`WIDENING`, or an unknown side. Arrays and tensors
    need the exact dtype."""
    want, got = dtype_kind(expected), dtype_kind(found)
    return want is None or got is None or want == got or got in WIDENING.get(want, set())


def widened(expected: str | None, found: str | None) -> bool:
    """Whether ``found`` fits ``expected`` only as another family (an int64 column for a float64
    one): allowed, and worth a note, since the model sees converted values."""
    want, got = dtype_kind(expected), dtype_kind(found)
    return want is not None and got is not None and want != got and got in WIDENING.get(want, set())


@dataclass(frozen=True)
class InputProblem:
    """One way an input does not match a signature.

    ``kind``: ``missing`` (a recorded column/input is absent), ``extra`` (one not recorded),
    ``order`` (the columns both have, in another order), ``dtype``, ``shape``, ``type`` (not the
    kind of object the signature describes). A ``note`` is a difference that is allowed (a column
    of another dtype family that fits, :data:`WIDENING`): reported, never a failure.
    """

    kind: str
    name: str | None
    expected: Any
    found: Any
    note: bool = False

    def __str__(self) -> str:
        what = f"input {self.name!r}" if self.name is not None else "the input"
        if self.kind == "missing":
            return f"{what} is missing"
        if self.kind == "extra":
            return f"{what} is not one the model was trained with"
        if self.note:
            return f"{what}: {self.kind} is {self.found} where {self.expected} was recorded (allowed: the model gets converted values)"
        return f"{what}: {self.kind} is {self.found}, expected {self.expected}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "expected": self.expected, "found": self.found}


@dataclass
class InputCheck:
    """What :meth:`ModelStore.check_input` found: ``ok`` when nothing but ``notes`` (allowed
    differences) differs."""

    domain: str
    version: int
    signature: dict[str, Any]
    problems: list[InputProblem] = field(default_factory=list)
    notes: list[InputProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain,
            "version": self.version,
            "ok": self.ok,
            "problems": [p.to_json() for p in self.problems],
            "notes": [p.to_json() for p in self.notes],
        }


def check_input(signature: dict[str, Any], data: Any) -> list[InputProblem]:
    """Every way ``data`` differs from ``signature`` (empty when it matches), notes included."""
    if signature["format"] == "columns":
        return _check_columns(signature["inputs"], data)
    return _check_tensors(signature["inputs"], data)


def _check_columns(inputs: list[dict[str, Any]], data: Any) -> list[InputProblem]:
    names = [entry.get("name") for entry in inputs]
    if is_dataframe(data):
        found = frame_columns(data)
        have = {n: d for n, d in found}
        problems = [InputProblem("missing", n, entry.get("dtype"), None) for n, entry in zip(names, inputs, strict=True) if n not in have]
        problems += [InputProblem("extra", n, None, d) for n, d in found if n not in set(names)]
        for entry in inputs:
            name = entry.get("name")
            if name in have:
                problems += _dtype_problems(name, entry.get("dtype"), have[name])
        # The columns both have, each in its own order: swapped columns are reported beside missing ones.
        expected_order, found_order = [n for n in names if n in have], [n for n, _ in found if n in set(names)]
        if expected_order != found_order:
            problems.append(InputProblem("order", None, expected_order, found_order))
        return problems
    if is_array(data):
        shape = [int(d) for d in data.shape]
        if len(shape) != 2 or shape[1] != len(inputs):
            return [InputProblem("shape", None, [None, len(inputs)], shape)]
        dtype = dtype_name(data.dtype)
        return [problem for e in inputs for problem in _dtype_problems(e.get("name"), e.get("dtype"), dtype)]
    return [InputProblem("type", None, "a pandas DataFrame (or a 2-D array)", _type_name(data))]


def _dtype_problems(name: str | None, expected: str | None, found: str) -> list[InputProblem]:
    """A column's dtype: nothing when it is of the recorded family, a note when it fits as another
    (:data:`WIDENING`), else a problem."""
    if not compatible(expected, found):
        return [InputProblem("dtype", name, expected, found)]
    return [InputProblem("dtype", name, expected, found, note=True)] if widened(expected, found) else []


def _check_tensors(inputs: list[dict[str, Any]], data: Any) -> list[InputProblem]:
    if len(inputs) == 1 and inputs[0].get("name") is None:
        if is_dataframe(data):
            data_shape, dtypes = [len(data), len(data.columns)], {d for _, d in frame_columns(data)}
            expected, dtype = inputs[0].get("shape"), inputs[0].get("dtype")
            problems = [] if expected is None or _shape_fits(expected, data_shape) else [InputProblem("shape", None, expected, data_shape)]
            return problems + [InputProblem("dtype", None, dtype, d) for d in sorted(dtypes) if not compatible(dtype, d)]
        if not is_array(data):
            return [InputProblem("type", None, "an array or tensor", _type_name(data))]
        return _check_one(inputs[0], data)
    if not isinstance(data, dict):
        return [InputProblem("type", None, f"a dict of {len(inputs)} arrays", _type_name(data))]
    names = [entry.get("name") for entry in inputs]
    problems = [InputProblem("missing", n, e.get("shape"), None) for n, e in zip(names, inputs, strict=True) if n not in data]
    problems += [InputProblem("extra", str(n), None, None) for n in data if n not in set(names)]
    for entry in inputs:
        value = data.get(entry.get("name"))
        if value is None:
            continue
        if not is_array(value):
            problems.append(InputProblem("type", entry.get("name"), "an array or tensor", _type_name(value)))
        else:
            problems += _check_one(entry, value)
    return problems


def _check_one(entry: dict[str, Any], array: Any) -> list[InputProblem]:
    problems = []
    shape = [int(d) for d in array.shape]
    if entry.get("shape") is not None and not _shape_fits(entry["shape"], shape):
        problems.append(InputProblem("shape", entry.get("name"), entry["shape"], shape))
    dtype = dtype_name(array.dtype)
    if entry.get("dtype") not in (None, dtype):  # tensors: frameworks refuse float64 for float32
        problems.append(InputProblem("dtype", entry.get("name"), entry.get("dtype"), dtype))
    return problems


def _shape_fits(expected: list[int | None], found: list[int]) -> bool:
    return len(expected) == len(found) and all(e is None or e == f for e, f in zip(expected, found, strict=True))


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"
