"""Input signatures, data fingerprints, compare and the environment of a version (the core, with
real numpy and pandas objects and a throwaway flavor whose framework is numpy)."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import warnings
from importlib import metadata

import numpy as np
import pandas as pd
import pytest

from modelstore_core import (
    CorruptRecordError,
    EnvironmentMismatchError,
    InputMismatchError,
    ModelStore,
    UsageError,
    VersionNotFoundError,
    hookimpl,
)
from modelstore_core.environment import EnvironmentWarning
from modelstore_core.flavor import Flavor
from modelstore_core.testing.tamper_contract import edit_record

RNG = np.random.default_rng(0)
FRAME = pd.DataFrame(
    {
        "age": RNG.integers(18, 90, 50),
        "income": RNG.normal(size=50),
        "plan": pd.Categorical(RNG.choice(["basic", "pro"], 50)),
        "city": RNG.choice(["Oslo", "Lyon"], 50).astype(object),
    }
)


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    return path


class ArrayFlavor:
    """A throwaway flavor: numpy arrays stored as .npy, recording numpy as its framework."""

    @hookimpl
    def modelstore_serialize(self, model, directory):
        if type(model).__module__ == "numpy":
            np.save(directory / "model.npy", model, allow_pickle=False)
            return Flavor(name="test-array", format="npy", plugin="modelstore-test-array", dependencies=["numpy"])

    @hookimpl
    def modelstore_deserialize(self, flavor, directory, files):
        if flavor.name == "test-array":
            return np.load(directory / files[0], allow_pickle=False)

    @hookimpl
    def modelstore_flavors(self):
        return ["test-array"]


@pytest.fixture
def arrays(store):
    plugin = ArrayFlavor()
    store.plugins.manager.register(plugin, name="test-array")
    yield store
    store.plugins.manager.unregister(plugin)


# --- input signature ---------------------------------------------------------------------------


def test_a_dataframe_example_records_columns_and_dtypes_never_values(store, model):
    v = store.upload("churn", files=[model], input_example=FRAME)
    assert v.signature == {
        "format": "columns",
        "source": "input_example",
        "inputs": [
            {"name": "age", "dtype": "int64"},
            {"name": "income", "dtype": "float64"},
            {"name": "plan", "dtype": "category"},
            {"name": "city", "dtype": str(FRAME["city"].dtype)},  # object, or str with pandas 3
        ],
    }
    stored = json.dumps(store.info("churn").metadata)
    assert "Oslo" not in stored and "basic" not in stored and str(FRAME["income"][0]) not in stored


def test_array_and_dict_examples_record_shapes_with_any_batch_size(store, model):
    v = store.upload("img", files=[model], input_example=np.zeros((8, 3, 32, 32), dtype=np.float32))
    assert v.signature["inputs"] == [{"name": None, "dtype": "float32", "shape": [None, 3, 32, 32]}]
    assert store.check_input("img", np.ones((2, 3, 32, 32), dtype=np.float32)).ok
    problems = store.check_input("img", np.ones((2, 3, 16, 16), dtype=np.float64)).problems
    assert [(p.kind, p.expected, p.found) for p in problems] == [
        ("shape", [None, 3, 32, 32], [2, 3, 16, 16]),
        ("dtype", "float32", "float64"),
    ]

    ids = np.zeros((4, 16), dtype=np.int64)
    v = store.upload("text", files=[model], input_example={"input_ids": ids, "mask": ids.astype(bool)})
    assert [i["name"] for i in v.signature["inputs"]] == ["input_ids", "mask"]
    assert store.check_input("text", {"input_ids": ids[:1], "mask": ids[:1].astype(bool)}).ok
    check = store.check_input("text", {"input_ids": ids, "extra": ids})
    assert sorted((p.kind, p.name) for p in check.problems) == [("extra", "extra"), ("missing", "mask")]
    assert [p.kind for p in store.check_input("text", ids).problems] == ["type"]


def test_check_input_names_each_column_that_does_not_match(store, model):
    store.upload("churn", files=[model], input_example=FRAME)
    assert store.check_input("churn", FRAME.head(3)).ok
    assert store.check_input("churn", FRAME.assign(age=FRAME.age.astype(float))).problems[0].kind == "dtype"  # int -> float column
    assert store.check_input("churn", FRAME.assign(plan=FRAME.plan.astype(str))).ok  # text fits a category
    renamed = FRAME.rename(columns={"income": "salary"}).drop(columns="city")
    check = store.check_input("churn", renamed)
    assert sorted((p.kind, p.name) for p in check.problems) == [("extra", "salary"), ("missing", "city"), ("missing", "income")]
    assert [p.kind for p in store.check_input("churn", FRAME[["income", "age", "plan", "city"]]).problems] == ["order"]
    with pytest.raises(InputMismatchError, match="input 'age': dtype is float64, expected int64") as err:
        store.check_input("churn", FRAME.assign(age=FRAME.age + 0.5), strict=True)
    assert err.value.problems and err.value.domain == "churn"
    assert check.to_dict()["ok"] is False and json.dumps(check.to_dict())


def test_check_input_reports_swapped_columns_beside_missing_ones(store, model):
    store.upload("churn", files=[model], input_example=FRAME)
    swapped_and_missing = FRAME[["income", "age", "plan"]]  # age and income swapped, city left out
    check = store.check_input("churn", swapped_and_missing)
    assert [(p.kind, p.name, p.expected, p.found) for p in check.problems] == [
        ("missing", "city", str(FRAME.city.dtype), None),
        ("order", None, ["age", "income", "plan"], ["income", "age", "plan"]),
    ]
    swapped_and_extra = FRAME[["income", "age", "plan", "city"]].assign(tenure=1)
    assert [p.kind for p in store.check_input("churn", swapped_and_extra).problems] == ["extra", "order"]
    assert [p.kind for p in store.check_input("churn", FRAME[["age", "plan"]]).problems] == ["missing", "missing"]  # in order


def test_a_column_of_another_dtype_family_that_fits_is_a_note(store, model):
    store.upload("churn", files=[model], input_example=FRAME)
    check = store.check_input("churn", FRAME.assign(income=RNG.integers(0, 9, 50)))  # int64 where float64 was recorded
    assert check.ok and check.problems == []
    assert [(p.kind, p.name, p.expected, p.found) for p in check.notes] == [("dtype", "income", "float64", "int64")]
    assert str(check.notes[0]) == "input 'income': dtype is int64 where float64 was recorded (allowed: the model gets converted values)"
    assert check.to_dict()["notes"] == [{"kind": "dtype", "name": "income", "expected": "float64", "found": "int64"}]
    assert store.check_input("churn", FRAME.assign(income=FRAME.income.astype("float32"))).notes == []  # the same family: no note
    as_text = FRAME.plan.astype(str)  # object, or str with pandas 3
    assert [p.found for p in store.check_input("churn", FRAME.assign(plan=as_text)).notes] == [str(as_text.dtype)]


def test_a_version_without_a_signature_says_how_to_record_one(store, model):
    store.upload("plain", files=[model])
    with pytest.raises(UsageError, match="input_example="):
        store.check_input("plain", FRAME)


def test_an_unsupported_example_is_refused_before_anything_is_written(store, model):
    with pytest.raises(UsageError, match="pass a pandas DataFrame"):
        store.upload("churn", files=[model], input_example=[[1, 2, 3]])
    with pytest.raises(UsageError, match=r"signature.inputs\[0\].name is 2000 characters long"):
        store.upload("churn", files=[model], input_example=pd.DataFrame({"x" * 2000: [1]}))
    assert store.list_domains() == []


# --- data fingerprints ----------------------------------------------------------------------------


def test_fingerprints_tell_the_same_data_from_other_data(store, model, tmp_path):
    csv = tmp_path / "train.csv"
    FRAME.to_csv(csv, index=False)
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "a.csv").write_text("1,2\n")
    (parts / "b.csv").write_text("3,4\n")
    array = RNG.normal(size=(20, 3)).astype(np.float32)
    one = store.upload("churn", files=[model], data={"train": FRAME, "raw": csv, "parts": parts, "emb": array}).data
    assert one["train"]["kind"] == "dataframe" and one["train"]["shape"] == [50, 4]
    assert one["train"]["columns"] == ["age", "income", "plan", "city"] and one["train"]["dtypes"][2] == "category"
    assert one["raw"] == {"kind": "file", "name": "train.csv", "bytes": csv.stat().st_size, "sha256": one["raw"]["sha256"]}
    assert one["parts"]["files"] == 2 and one["parts"]["kind"] == "directory"
    assert one["emb"]["shape"] == [20, 3] and one["emb"]["bytes"] == 240
    assert str(tmp_path) not in json.dumps(store.info("churn").metadata)  # never a local path

    # The same data again, rebuilt: the same fingerprints; an index renumbered changes nothing.
    same = store.upload(
        "churn", files=[model], data={"train": FRAME.copy().set_axis(range(100, 150)), "raw": csv, "parts": parts, "emb": array.copy()}
    ).data
    assert same == one
    # One value, a dtype, the row order, a transposed array: other data.
    changed = FRAME.copy()
    changed.loc[7, "income"] += 1e-9
    for other in (changed, FRAME.astype({"age": "int32"}), FRAME.iloc[::-1]):
        assert store.upload("churn", files=[model], data={"train": other}).data["train"]["sha256"] != one["train"]["sha256"]
    transposed = np.ascontiguousarray(array.T).reshape(20, 3)
    assert store.upload("churn", files=[model], data={"emb": transposed}).data["emb"]["sha256"] != one["emb"]["sha256"]
    fortran = np.asfortranarray(array)  # the same values in another memory order: the same data
    assert store.upload("churn", files=[model], data={"emb": fortran}).data["emb"]["sha256"] == one["emb"]["sha256"]


@pytest.mark.parametrize(
    "data, problem",
    [
        ({"train": np.array([{"a": 1}], dtype=object)}, "Python objects"),
        ({"train": [1, 2, 3]}, "pass a pandas DataFrame"),
        ({"../train": FRAME}, "invalid dataset name"),
        ({"train": "/no/such/file.csv"}, "no such file"),
        ([FRAME], "must be a dict"),
    ],
)
def test_bad_data_is_refused_before_anything_is_written(store, model, data, problem):
    with pytest.raises(UsageError, match=problem):
        store.upload("churn", files=[model], data=data)
    assert store.list_domains() == []


def test_the_core_imports_no_framework_until_one_is_passed(tmp_path):
    code = """
import sys
from modelstore_core import ModelStore
import modelstore_core.input_signature, modelstore_core.fingerprint, modelstore_core.compare, modelstore_core.environment
import modelstore_core.cli.commands
store = ModelStore(sys.argv[1])
(f := __import__("pathlib").Path(sys.argv[1]).parent / "m.bin").write_bytes(b"x")
store.upload("d", files=[f], metrics={"auc": 0.5}, data={"raw": f})
store.compare("d", [1, 1])
store.check_environment("d", 1)
loaded = {"numpy", "pandas", "torch"} & set(sys.modules)
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "store")], check=True)


# --- compare ---------------------------------------------------------------------------------------


def test_compare_marks_the_best_value_of_each_metric(store, model):
    store.upload("churn", files=[model], metrics={"auc": 0.81, "val_loss": 0.5, "lift": 2.0}, params={"lr": 0.1}, data={"train": FRAME})
    store.upload("churn", files=[model], metrics={"auc": 0.91, "val_loss": 0.4, "lift": 1.5}, params={"lr": 0.2}, tags={"team": "risk"})
    store.upload("churn", files=[model], metrics={"auc": 0.91, "val_loss": 0.45}, data={"train": FRAME.head(10)})
    store.set_state("churn", 2, "production")
    c = store.compare("churn", [3, 1, 2])
    assert c.versions == [3, 1, 2]
    assert c.best("auc") == [3, 2] and c.best("val_loss") == [2] and c.best("lift") == []  # "lift": direction unknown
    assert store.compare("churn", [1, 2, 3], directions={"lift": "higher"}).best("lift") == [1]
    doc = c.to_dict()
    json.dumps(doc, allow_nan=False)
    shown = [s for s in doc["sections"] if s != "git"]  # git: when the tests run inside a repository
    assert shown == ["tags", "metrics", "params", "states", "size", "flavor", "dependencies", "data"]  # record fields in FIELDS order
    assert c.row("metrics", "lift").values == [None, 2.0, 1.5]
    assert c.row("params", "lr").values == [None, 0.1, 0.2] and c.row("params", "lr").differs
    assert c.row("states", "states").values == [[], [], ["production"]]
    assert c.row("tags", "team").values == [None, None, "risk"]
    sha = c.row("data", "train.sha256").values
    assert sha[0] != sha[1] and sha[2] is None
    assert c.row("size", "bytes").values == [7, 7, 7] and not c.row("size", "bytes").differs


def test_compare_refuses_what_it_cannot_compare(store, model):
    store.upload("churn", files=[model])
    with pytest.raises(VersionNotFoundError):
        store.compare("churn", [1, 9])
    with pytest.raises(UsageError, match="'higher' or 'lower'"):
        store.compare("churn", [1], directions={"auc": "up"})
    with pytest.raises(UsageError, match="list of version numbers"):
        store.compare("churn", 1)
    edit_record(store, "churn", 1, lambda doc: doc.__setitem__("metrics", {"auc": "0.99"}))
    with pytest.raises(CorruptRecordError, match="metrics.auc"):
        store.compare("churn", [1])


def test_metric_directions_from_names():
    from modelstore_core.compare import metric_direction

    higher = ["auc", "roc_auc", "accuracy", "val_accuracy", "top-1.accuracy", "f1", "f1_macro", "precision", "recall", "r2", "neg_rmse"]
    lower = ["loss", "val_loss", "rmse", "mse", "mae", "error", "test-error", "logloss", "neg_r2"]
    assert {name: metric_direction(name) for name in higher} == dict.fromkeys(higher, "higher")
    assert {name: metric_direction(name) for name in lower} == dict.fromkeys(lower, "lower")
    assert [metric_direction(n) for n in ("lift", "epochs", "auc_loss")] == [None, None, None]


# --- environment ---------------------------------------------------------------------------------


def _set_version(store, name: str, version: str) -> None:
    edit_record(store, "m", 1, lambda doc: doc["dependencies"].__setitem__(name, version))


def _patch_of(version: str) -> str:
    major, minor, *_ = version.split(".")
    return f"{major}.{minor}.999"


def test_env_pins_what_the_version_was_stored_with(arrays):
    arrays.upload("m", model=np.arange(3.0))
    env = arrays.environment("m")
    text = env.requirements_txt()
    assert f"numpy=={np.__version__}" in text.splitlines()
    assert f"# Python {platform.python_version()} " in text and "modelstore-core==" in text
    assert [r.name for r in env.requirements if r.key] == ["numpy"]
    assert env.to_dict()["python"] == platform.python_version()
    assert arrays.check_environment("m").ok and arrays.check_environment("m").differences == []


@pytest.mark.parametrize(
    "field, value",
    [
        ("version", "1.0\n--index-url https://evil.example/simple"),
        ("version", "1.0 ; os.system('x')"),
        ("name", "--extra-index-url=https://evil.example"),
        ("name", "numpy\nevil"),
        ("marker", 'sys_platform == "linux"\nevil==1'),
        ("marker", "python_version>'3' --config-settings=--build-option=--evil"),  # pip reads the option
        ("marker", 'python_version > "3 --config-settings=a=b"'),  # PEP 508 all right, but pip splits at " -"
        ("marker", 'python_version > "${HOME}"'),  # pip expands variables
        ("marker", 'python_version > "3" # a comment'),
    ],
)
def test_a_record_cannot_smuggle_lines_into_a_requirements_file(arrays, field, value):
    arrays.upload("m", model=np.arange(3.0))

    def edit(doc):
        if field == "version":
            doc["dependencies"]["numpy"] = value
        elif field == "name":
            doc["dependencies"][value] = "1.0"
        else:
            doc["environment"]["markers"]["numpy"] = value

    edit_record(arrays, "m", 1, edit)
    with pytest.raises(CorruptRecordError, match="dependencies|markers"):
        arrays.environment("m")


PIP_READS = """
import json, sys
from pip._internal.network.session import PipSession
from pip._internal.req.req_file import parse_requirements
print(json.dumps([[r.requirement, r.options] for r in parse_requirements(sys.argv[1], session=PipSession())]))
"""


def pip_reads(path) -> list[list]:
    """What pip's own requirements-file parser takes from ``path``: [requirement, per-line options] for each requirement."""
    found = subprocess.run([sys.executable, "-c", PIP_READS, str(path)], capture_output=True, text=True, check=True)
    return json.loads(found.stdout)


def test_pip_reads_nothing_but_pinned_requirements_from_env(arrays, tmp_path):
    arrays.upload("m", model=np.arange(3.0))
    marker = "python_version >= '3' and (sys_platform != 'win32' or platform_machine == 'x86_64')"
    edit_record(arrays, "m", 1, lambda doc: doc["environment"]["markers"].__setitem__("modelstore-core", marker))
    path = tmp_path / "requirements.txt"
    path.write_text(arrays.environment("m").requirements_txt())
    requirements = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert pip_reads(path) == [[line, {}] for line in requirements]  # every line one requirement, no option
    path.write_text(arrays.environment("m").requirements_txt(include_local=True))
    requirements = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    assert pip_reads(path) == [[line, {}] for line in requirements]
    assert 'modelstore-core==0.1.0 ; python_version >= "3" and (sys_platform != "win32" or platform_machine == "x86_64")' in requirements
    dry_run = [sys.executable, "-m", "pip", "install", "--dry-run", "--no-index", "--quiet", "-r", str(path)]
    installed = subprocess.run(dry_run, capture_output=True, text=True)
    assert installed.returncode == 0, installed.stderr  # what this environment has: nothing to fetch
    # The probe sees what the old output let through: the marker's tail as a pip option.
    path.write_text("numpy==2.0 ; python_version>'3' --config-settings=--build-option=--evil\n")
    assert pip_reads(path) == [["numpy==2.0 ; python_version>'3'", {"config_settings": {"--build-option": "--evil"}}]]


def test_env_comments_out_what_no_index_serves(arrays, tmp_path):
    # nox installs this checkout's modelstore-core with `-e .`, as the README tells a new user to:
    # pip records that in direct_url.json (PEP 610), and no index serves modelstore-core 0.1.0.
    assert json.loads(metadata.distribution("modelstore-core").read_text("direct_url.json"))["dir_info"] is not None
    arrays.upload("m", model=np.arange(3.0))
    env = arrays.environment("m")
    assert {r.name: r.installed_from for r in env.requirements} == {"modelstore-core": "directory", "numpy": None}
    path = tmp_path / "requirements.txt"
    path.write_text(env.requirements_txt())
    assert pip_reads(path) == [[f"numpy=={np.__version__}", {}]]  # numpy, from an index, stays pinned
    assert "#   modelstore-core==0.1.0  (installed from a local directory)" in path.read_text().splitlines()
    path.write_text(env.requirements_txt(include_local=True))
    assert pip_reads(path) == [["modelstore-core==0.1.0", {}], [f"numpy=={np.__version__}", {}]]


def test_a_record_names_only_known_sources(arrays):
    arrays.upload("m", model=np.arange(3.0))
    edit_record(arrays, "m", 1, lambda doc: doc["environment"].__setitem__("installed_from", {"numpy": "/home/me/numpy\n--index-url x"}))
    with pytest.raises(CorruptRecordError, match="environment.installed_from"):
        arrays.environment("m")


def test_markers_are_written_where_they_apply(arrays):
    arrays.upload("m", model=np.arange(3.0))
    edit_record(arrays, "m", 1, lambda doc: doc["environment"]["markers"].__setitem__("modelstore-core", 'sys_platform == "win32"'))
    assert 'modelstore-core==0.1.0 ; sys_platform == "win32"' in arrays.environment("m").requirements_txt(include_local=True).splitlines()


@pytest.mark.parametrize("recorded", ["patch", "local build", "no patch number"])
def test_load_never_warns_about_a_patch_release(arrays, recorded):
    arrays.upload("m", model=np.arange(3.0))
    major_minor = ".".join(np.__version__.split(".")[:2])
    version = {"patch": _patch_of(np.__version__), "local build": np.__version__ + "+cpu", "no patch number": major_minor}[recorded]
    _set_version(arrays, "numpy", version)
    _set_version(arrays, "modelstore-core", "0.0.1")  # not what the flavor reads its files with
    edit_record(arrays, "m", 1, lambda doc: doc["runtime"].__setitem__("python", platform.python_version() + "1"))  # a patch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert arrays.load("m", strict_environment=True).tolist() == [0.0, 1.0, 2.0]
    check = arrays.check_environment("m")
    assert check.ok and {d.name for d in check.differences} == {"numpy", "modelstore-core", "python"}
    assert not any(d.matters for d in check.differences)


def test_load_warns_once_in_one_line_when_the_framework_minor_differs(arrays):
    arrays.upload("m", model=np.arange(3.0))
    major, minor = np.__version__.split(".")[:2]
    _set_version(arrays, "numpy", f"{major}.{int(minor) + 1}.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        arrays.load("m")
        arrays.load("m")
    assert len(caught) == 1 and caught[0].category is EnvironmentWarning
    message = str(caught[0].message)
    assert "\n" not in message and f"numpy {major}.{int(minor) + 1}.0 recorded, {np.__version__} here" in message
    assert "modelstore env m 1" in message
    with pytest.raises(EnvironmentMismatchError, match="numpy") as err:
        arrays.load("m", strict_environment=True)
    assert [d.name for d in err.value.differences] == ["numpy"]


def test_load_warns_about_another_python_minor(arrays):
    arrays.upload("m", model=np.arange(3.0))
    major, minor = sys.version_info[:2]
    edit_record(arrays, "m", 1, lambda doc: doc["runtime"].__setitem__("python", f"{major}.{minor + 1}.0"))
    with pytest.raises(EnvironmentMismatchError, match=rf"python {major}\.{minor + 1}\.0 recorded"):
        arrays.load("m", strict_environment=True)


def test_a_missing_framework_matters_a_missing_helper_does_not(arrays):
    arrays.upload("m", model=np.arange(3.0))
    edit_record(arrays, "m", 1, lambda doc: doc["dependencies"].update({"not-installed-helper": "1.0"}))
    check = arrays.check_environment("m")
    assert [(d.name, d.installed, d.matters) for d in check.differences] == [("not-installed-helper", None, False)]
    assert metadata.version("numpy") == np.__version__
