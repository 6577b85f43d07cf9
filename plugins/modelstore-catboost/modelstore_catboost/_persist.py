"""Writing and reading CatBoost models with their own ``save_model``/``load_model`` (``.cbm``).

Imported only when a catboost model (or a ``catboost`` flavor version) is handled.

Loading: catboost does not check the indices inside a ``.cbm``'s model core, and some single bit
flips of a real model's file crash it (SIGSEGV, in ``load_model`` or in the first ``predict``). So
the verified bytes are first loaded, and a row of zeros predicted, in a probe process
(:func:`probe`): a crash there is a ``CorruptArtifactError``, never the caller's process going
down. On Linux the probe is a fork of the caller (catboost is imported already: it costs about
one more load); elsewhere, or when the fork gives no verdict, a fresh interpreter (about 1 s of
CPU for catboost's import).

Determinism: saving the same fitted model twice gives the same bytes, so a re-upload stores no
new file. CatBoost embeds a random ``model_guid`` and the ``train_finish_time`` at fit time, so
two fits never give the same file, even with the same data and seed; and a model loaded from a
``.cbm`` saves differently from the one that wrote it (CatBoost rewrites its ``params`` metadata
in another key order on load).
"""

from __future__ import annotations

import os
import select
import signal
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import (
    CorruptArtifactError,
    Flavor,
    ModelStoreError,
    UsageError,
    VersionFiles,
    check_name,
    model_file,
    qualified_name,
)

from . import FLAVOR, PLUGIN

CLASSES = ("CatBoostClassifier", "CatBoostRegressor", "CatBoostRanker", "CatBoost")
FILE = "model.cbm"
#: A .cbm file starts with this magic and the little-endian size of the model's flatbuffer core.
MAGIC = b"CBM1"


def known_classes() -> dict[str, type]:
    import catboost

    return {name: getattr(catboost, name) for name in CLASSES if hasattr(catboost, name)}


def serialize(model: Any, directory: Path) -> Flavor:
    classes = known_classes()
    name = next((n for n, cls in classes.items() if type(model) is cls), None)
    if name is None:
        raise UsageError(
            f"modelstore-catboost stores {', '.join(CLASSES)} and loads them back as the same class; "
            f"{qualified_name(model)} is not one of them (a subclass could not be rebuilt): store the "
            "files of model.save_model(...) with upload(domain, files=[...])"
        )
    if not model.is_fitted():
        raise UsageError(f"this {qualified_name(model)} is not fitted: there is nothing to store yet")
    model.save_model(str(directory / FILE), format="cbm")
    return Flavor(
        name=FLAVOR,
        format="cbm",
        plugin=PLUGIN,
        model_class=qualified_name(model),
        safe=True,
        dependencies=["catboost"],
        options={"file": FILE, "class": name},
    )


def deserialize(flavor: Flavor, files: list[str], verified: VersionFiles) -> Any:
    """The model of a ``catboost`` version, read once through ``verified`` (hashed in the same
    pass), its header checked, probed (unless these bytes passed the probe in an earlier load: a
    verdict kept in the cache), and loaded by catboost from memory."""
    import catboost

    options = flavor.options
    name, file = options.get("class"), options.get("file")
    model_file(verified.directory, files, file, option="file")  # only the check: the bytes come through ``verified``
    classes = known_classes()
    if name not in classes:
        raise ModelStoreError(
            f"this version holds a catboost {name!r}, which catboost {catboost.__version__} with this "
            f"modelstore-catboost cannot rebuild; upgrade them (`pip install -U {PLUGIN}[catboost]`)"
        )
    with verified.open(file) as reader:
        data = reader.read(reader.size)  # reaching the end raises IntegrityError unless these are the recorded bytes
    check_header(data[:8], len(data), file)
    # The same bytes probed on this machine before (another view, store or version) are not probed again.
    check = check_name(PLUGIN, f"probe-{PROBE_VERSION}-{name}", catboost)
    passed = verified.passed_before(file, check)
    if not passed:
        probe(data, name, file)
    model = classes[name]()
    try:
        model.load_model(blob=data)  # catboost takes a blob as bytes only
    except (catboost.CatBoostError, ValueError, UnicodeError) as exc:  # its JSON metadata, too (JSONDecodeError)
        raise CorruptArtifactError(file, f"catboost refused it: {str(exc).splitlines()[0][:200]}") from exc
    if not passed:
        verified.remember_passed(file, check)
    return model


#: What a probe runs: :func:`load_and_predict` loads the model as :func:`deserialize` loads it,
#: then predicts a row of zeros (some damaged trees crash only there). Run as a script (the fresh
#: interpreter of :func:`probe_in_interpreter`), it reads the model from stdin and exits 0 when it
#: loaded, 3 when catboost raised (the reason on stderr); killed by a signal, it crashed.
PROBE = """
import sys
import catboost

def load_and_predict(name, blob):
    model = getattr(catboost, name)()
    model.load_model(blob=blob)
    names = model.feature_names_ or []
    if names and not model.get_embedding_feature_indices():
        categorical = set(model.get_cat_feature_indices()) | set(model.get_text_feature_indices())
        row = ["0" if i in categorical else 0.0 for i in range(len(names))]
        pool = catboost.Pool([row], cat_features=model.get_cat_feature_indices() or None,
                             text_features=model.get_text_feature_indices() or None)
        catboost.CatBoost.predict(model, pool, prediction_type="RawFormulaVal", thread_count=1)  # the base's: every class has it

if __name__ == "__main__":
    try:
        load_and_predict(sys.argv[1], sys.stdin.buffer.read())
    except Exception as exc:
        print(f"{type(exc).__name__}: {exc}".splitlines()[0][:200], file=sys.stderr)
        sys.exit(3)
"""
#: The version of the probe, in the name of the verdict a load remembers (bump it when :data:`PROBE` changes).
PROBE_VERSION = 1
#: Seconds the probe may take: catboost loads models of hundreds of MB in seconds.
PROBE_TIMEOUT = 300
#: Exit status of a probe in which catboost raised.
REFUSED = 3


def probe(data: bytes, name: str, file: str) -> None:
    """Load ``data`` as a catboost ``name`` in a child process first: refuse what crashes it.

    The child is a fork of this process (:func:`probe_in_fork`: catboost is imported already, so
    the probe costs about one more load), or, where there is no fork or the forked probe could not
    give a verdict, a fresh interpreter (:func:`probe_in_interpreter`: an interpreter and
    catboost's import, about a second of CPU).

    :raises CorruptArtifactError: when catboost crashed, raised, or did not finish in the child.
    """
    verdict = probe_in_fork(data, name) if sys.platform == "linux" else None
    status, reason = verdict if verdict is not None else probe_in_interpreter(data, name, file)
    if status < 0:
        try:
            how = signal.Signals(-status).name
        except ValueError:
            how = f"signal {-status}"
        raise CorruptArtifactError(file, f"catboost crashed ({how}) loading it in a probe process")
    if status == REFUSED:
        raise CorruptArtifactError(file, f"catboost refused it: {reason.strip()[:200]}")
    if status != 0:
        raise CorruptArtifactError(file, f"the probe process that loads it first failed (exit {status}: {reason[-200:]})")


def probe_in_interpreter(data: bytes, name: str, file: str) -> tuple[int, str]:
    """:data:`PROBE` in a fresh interpreter: (exit status, negative for a signal; its stderr)."""
    try:
        done = subprocess.run([sys.executable, "-c", PROBE, name], input=data, capture_output=True, timeout=PROBE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise CorruptArtifactError(file, f"catboost did not finish loading it in a probe process within {PROBE_TIMEOUT} s") from None
    return done.returncode, done.stderr.decode(errors="replace")


def probe_in_fork(data: bytes, name: str) -> tuple[int, str] | None:
    """:data:`PROBE`'s ``load_and_predict`` in a fork of this process: (exit status, negative for a
    signal; the reason catboost gave), or None when it gave no verdict (no fork, or no answer in
    time: a fork copies no other thread, so a lock another thread held stays held in the child;
    the caller then asks a fresh interpreter).

    The child writes nothing to this process's stdout or stderr, and ends with ``os._exit``: no
    atexit handler and no buffer of this process runs twice."""
    timeout = min(PROBE_TIMEOUT, 30 + len(data) / 10e6)  # a deadlock is not a verdict: give up well before the interpreter would
    read_end, write_end = os.pipe()
    try:
        with warnings.catch_warnings():  # "use of fork() may lead to deadlocks": the timeout covers it
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
    except (OSError, RuntimeError):  # no fork here (a sub-interpreter, a resource limit)
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # the child: never returns
        status = 0
        try:
            os.close(read_end)
            quiet = os.open(os.devnull, os.O_WRONLY)
            os.dup2(quiet, 1)
            os.dup2(quiet, 2)
            namespace = {"__name__": "modelstore_catboost.probe"}
            exec(PROBE, namespace)
            try:
                namespace["load_and_predict"](name, data)
            except Exception as exc:  # noqa: BLE001 - any refusal by catboost is the verdict
                status = REFUSED
                os.write(write_end, f"{type(exc).__name__}: {exc}".splitlines()[0][:200].encode(errors="replace"))
        except BaseException:  # noqa: BLE001 - the probe itself failed: no verdict
            status = 70
        finally:
            os._exit(status)
    os.close(write_end)
    reason = b""
    deadline = time.monotonic() + timeout
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        while True:  # until the child closes its end (it ended) or the time is up
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([pipe], [], [], left)[0]:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            chunk = pipe.read(4096)
            if not chunk:
                break
            reason += chunk
    status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    return None if status == 70 else (status, reason.decode(errors="replace"))


def check_header(head: bytes, size: int, file: str) -> None:
    """The cheap part of the format: the magic, and a core that fits in the file.

    This does not make a .cbm safe: catboost does not check the indices inside the core, and some
    bit flips there crash it (see the README).
    """
    if head[:4] != MAGIC:
        raise CorruptArtifactError(file, "it does not start with CatBoost's 'CBM1' magic")
    if len(head) < 8 or struct.unpack("<I", head[4:8])[0] > size - 8:
        raise CorruptArtifactError(file, "its header declares a model core larger than the file")
