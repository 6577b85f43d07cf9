"""What a version records besides its files: the run's metrics, params and tags, the input
signature, and the environment, from what MLflow kept (all untrusted, each checked here).

Names and values that the record rules refuse (MLflow allows ``train/loss``, newlines in tags,
NaN metrics) stay in ``metadata["mlflow"]`` as MLflow had them and are counted in the report's note.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from modelstore_core.fields import parse_signature
from modelstore_core.metrics import MAX_ENTRIES, metric_problem, param_problem
from modelstore_core.names import tag_problem
from modelstore_core.plugin_api import CorruptRecordError, json_value

from .mapping import MAX_YAML_BYTES, read_yaml
from .registry import MlflowImportError

#: MLflow's column types -> the dtype names this project's signatures use (numpy's).
COLUMN_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "str",
    "binary": "bytes",
    "datetime": "datetime64[ns]",
}
#: Tags this import records on every version (the rest of MLflow's ``mlflow.*`` tags go to metadata).
OWN_TAGS = ("mlflow.registered_model", "mlflow.version", "mlflow.run_id", "mlflow.source", "mlflow.model_id")


def recorded_values(kind: str, values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The entries of ``values`` that a version can record as ``kind`` (``tags``, ``metrics``,
    ``params``), converted; and the names of those left out."""
    kept: dict[str, Any] = {}
    left_out: list[str] = []
    for name, value in values.items():
        if len(kept) == MAX_ENTRIES:  # a record keeps at most this many (the rest stay in the metadata)
            left_out.append(str(name))
            continue
        if kind == "params":
            value = _param(value)
            problem = param_problem(name, value)
        elif kind == "metrics":
            problem = metric_problem(name, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else "not a number"
        else:
            problem = tag_problem(name, value)
        if problem:
            left_out.append(str(name))
        else:
            kept[name] = value
    return kept, left_out


def _param(value: Any) -> Any:
    """MLflow keeps every param as a string: a number or boolean reads back as one (``"0.1"`` -> 0.1)."""
    if not isinstance(value, str):
        return value
    if value in ("True", "False", "true", "false"):
        return value.lower() == "true"
    if re.fullmatch(r"-?\d{1,18}", value):
        return int(value)
    if re.fullmatch(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?", value):
        number = float(value)
        return number if math.isfinite(number) else value
    return value


# --- the input signature ------------------------------------------------------------------------------


def signature(mlmodel: dict[str, Any] | None, directory: Path, names: list[str]) -> tuple[dict[str, Any] | None, str | None]:
    """The version's input signature: from the MLmodel's ``signature`` (its inputs), else from the
    input example MLflow saved (an array, or a table in pandas' split layout). The second value
    says why none was recorded, when MLflow had one that cannot be (for the note)."""
    sig = (mlmodel or {}).get("signature")
    built = None
    try:
        if isinstance(sig, dict) and isinstance(sig.get("inputs"), str):
            built = _from_schema(json.loads(sig["inputs"]))
        elif "input_example.json" in names:
            built = _from_example(directory / "input_example.json", (mlmodel or {}).get("saved_input_example_info") or {})
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        return None, f"its MLflow signature was not recorded ({type(exc).__name__}: {str(exc)[:100]})"
    if built is None:
        return None, None
    try:
        return parse_signature(built, "signature"), None
    except CorruptRecordError as exc:
        return None, f"its MLflow signature was not recorded ({exc.field} {exc.problem})"


def _from_schema(inputs: Any) -> dict[str, Any] | None:
    if not isinstance(inputs, list) or not inputs:
        return None
    if all(isinstance(i, dict) and i.get("type") == "tensor" for i in inputs):
        entries = []
        for item in inputs:
            spec = item["tensor-spec"]
            shape = spec.get("shape")
            entries.append(
                {
                    "name": item.get("name"),
                    "dtype": spec.get("dtype"),
                    "shape": None if shape is None else [None if d == -1 else d for d in shape],
                }
            )
        return {"format": "tensors", "source": "mlflow signature", "inputs": entries}
    entries = []
    for item in inputs:
        kind = item.get("type")
        entries.append({"name": item.get("name"), "dtype": COLUMN_TYPES.get(kind) if isinstance(kind, str) else None})
    return {"format": "columns", "source": "mlflow signature", "inputs": entries}


def _from_example(path: Path, info: dict[str, Any]) -> dict[str, Any] | None:
    if path.stat().st_size > MAX_YAML_BYTES:
        return None
    example = json.loads(path.read_bytes())
    kind = info.get("type") if isinstance(info, dict) else None
    if kind == "ndarray" and isinstance(example, list):
        shape, leaves = _shape(example)
        return {
            "format": "tensors",
            "source": "mlflow input example",
            "inputs": [{"name": None, "dtype": _dtype(leaves), "shape": [None, *shape[1:]]}],
        }
    if kind == "dataframe" and isinstance(example, dict) and isinstance(example.get("columns"), list):
        rows = example.get("data") if isinstance(example.get("data"), list) else []
        columns = example["columns"]
        inputs = []
        for i, name in enumerate(columns):
            values = [row[i] for row in rows if isinstance(row, list) and len(row) > i]
            inputs.append({"name": str(name), "dtype": _dtype(values)})
        return {"format": "columns", "source": "mlflow input example", "inputs": inputs}
    return None


def _shape(value: Any) -> tuple[list[int], list[Any]]:
    shape: list[int] = []
    level = [value]
    while level and all(isinstance(v, list) for v in level):
        sizes = {len(v) for v in level}
        if len(sizes) != 1 or len(shape) > 64:
            raise ValueError("a ragged array")
        shape.append(sizes.pop())
        level = [item for v in level for item in v]
    return shape, level


def _dtype(values: list[Any]) -> str | None:
    kinds = {type(v) for v in values if v is not None}
    if kinds == {bool}:
        return "bool"
    if kinds == {int}:
        return "int64"
    if kinds and kinds <= {int, float}:
        return "float64"
    if kinds == {str}:
        return "str"
    return None


# --- the environment ----------------------------------------------------------------------------------

_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]{0,99}")
_MARKER = re.compile(r"[A-Za-z0-9_ .'\"<>=!~(),*-]{1,500}")
_PYTHON = re.compile(r"\d+\.\d+(?:\.\d+)?[A-Za-z0-9.+]{0,20}")


def environment(directory: Path, names: list[str], framework: list[str]) -> tuple[dict[str, Any], list[str], list[str]]:
    """The record's ``dependencies``/``environment``/``runtime`` from MLflow's ``requirements.txt``
    (else ``conda.yaml``'s pip list) and ``python_env.yaml`` (else ``conda.yaml``'s python); the
    requirements that pin no version (kept in ``metadata["mlflow"]``); and problems for the note.
    ``framework``: the distributions the mapped flavor reads its files with (the environment's key)."""
    problems: list[str] = []
    lines: list[str] = []
    python = None
    conda = None
    if "conda.yaml" in names:
        try:
            conda = read_yaml(directory / "conda.yaml", "conda.yaml")
        except MlflowImportError as exc:
            problems.append(str(exc))
    if "requirements.txt" in names:
        data = (directory / "requirements.txt").read_bytes()[:MAX_YAML_BYTES]
        lines = data.decode("utf-8", "replace").splitlines()
    elif isinstance(conda, dict):
        for dep in conda.get("dependencies") or []:
            if isinstance(dep, dict) and isinstance(dep.get("pip"), list):
                lines += [str(x) for x in dep["pip"]]
    if "python_env.yaml" in names:
        try:
            doc = read_yaml(directory / "python_env.yaml", "python_env.yaml")
            python = str(doc.get("python")) if isinstance(doc, dict) and doc.get("python") is not None else None
        except MlflowImportError as exc:
            problems.append(str(exc))
    if python is None and isinstance(conda, dict):
        for dep in conda.get("dependencies") or []:
            if isinstance(dep, str) and dep.startswith("python="):
                python = dep[len("python=") :]
    if python is not None and not _PYTHON.fullmatch(python):
        problems.append(f"its Python version {python[:40]!r} is not one")
        python = None
    pinned, markers, unpinned = _requirements(lines)
    canonical = {_canonical(n) for n in framework}
    key = sorted(n for n in pinned if _canonical(n) in canonical)
    recorded = {
        "dependencies": dict(sorted(pinned.items(), key=lambda kv: kv[0].lower())),
        "environment": {"key": key, "markers": markers},
        # what ran the model in MLflow: only its Python is known
        "runtime": {"python": python, "implementation": None, "platform": None, "machine": None, "byteorder": None},
    }
    return recorded, unpinned, problems


def _requirements(lines: list[str]) -> tuple[dict[str, str], dict[str, str], list[str]]:
    from packaging.requirements import InvalidRequirement, Requirement

    pinned: dict[str, str] = {}
    markers: dict[str, str] = {}
    unpinned: list[str] = []
    for raw in lines[:10_000]:
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            unpinned.append(line[:200])
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            unpinned.append(line[:200])
            continue
        specs = list(req.specifier)
        marker = str(req.marker) if req.marker is not None else ""
        if len(specs) == 1 and specs[0].operator == "==" and _VERSION.fullmatch(specs[0].version) and not req.url:
            if marker and not _MARKER.fullmatch(marker):
                unpinned.append(line[:200])
                continue
            pinned[req.name] = specs[0].version
            if marker:
                markers[req.name] = marker
        else:
            unpinned.append(line[:200])
    return pinned, markers, unpinned


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


#: The distributions each plugin's flavor reads its files with (the environment's key).
FRAMEWORKS = {
    "sklearn": ["scikit-learn", "skops", "joblib", "cloudpickle"],
    "xgboost": ["xgboost", "xgboost-cpu"],
    "lightgbm": ["lightgbm"],
    "catboost": ["catboost"],
    "onnx": ["onnx"],
    "transformers": ["transformers", "torch", "safetensors", "tokenizers"],
    "torch": ["torch", "cloudpickle"],
    "statsmodels": ["statsmodels"],
}


def mlflow_json(value: Any) -> Any:
    """A value MLflow kept, as JSON this project stores (non-finite floats marked, the rest as it is)."""
    return json_value(value)
