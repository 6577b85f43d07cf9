"""Importing a store written by the original ``modelstore`` library (0.0.x on PyPI).

The legacy layout, below the legacy root (a directory, or a bucket and prefix)::

    operatorai-model-store/<domain>/versions/<model id>.json            a model's metadata
    operatorai-model-store/<domain>/versions/<state>/<model id>.json    the model is in <state>
    operatorai-model-store/<domain>/<yyyy.mm.dd-hh.mm.ss>/<model id>/artifacts.tar.gz
    operatorai-model-store/domains/<domain>.json                        the domain's latest model
    operatorai-model-store/model_states/<state>.json                    a state exists

It is read through the storage primitives (any backend; the legacy library is not needed), one
listing per domain. Everything in it is untrusted: metadata is type-checked, archives are
extracted member by member (regular files only, names that are valid file names here, no
links, capped in count and size) and a model that breaks a rule is reported and left out.

A legacy model whose files a plugin here reads as they are becomes that plugin's flavor
(:func:`legacy_flavor`, :data:`MAPPERS`); the plugin checks the files at load as it checks its
own. Any other is imported as raw files.

Each legacy model becomes the next version of its domain, oldest first, with the legacy id,
creation time and the rest of the legacy metadata under ``metadata["legacy"]``. A re-run skips
every model whose legacy id a version of the domain already records. A legacy state that names
exactly one model of a domain becomes a state here; one that names several cannot (a state
here names one version) and is reported.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidNameError, KeyNotFoundError, ModelStoreError
from .flavor import RAW_FILES, Flavor
from .importing import TRANSFORMERS_MODEL_FILES, XGBOOST_CLASSES, ImportedFiles, ImportReport, imported_versions, is_pickle
from .names import check_file_path, check_name, check_tags
from .progress import Progress, ProgressCallback

if TYPE_CHECKING:
    from .store import ModelStore

ROOT = "operatorai-model-store/"
#: Folders of the legacy root that are not domains.
NOT_DOMAINS = {"domains", "model_states"}
#: The legacy library's reserved state (a deleted model's metadata is kept there).
RESERVED_STATES = {"deleted"}
#: A legacy metadata document larger than this is refused unread.
MAX_METADATA_BYTES = 16 << 20
#: Default caps on one artifacts archive: members, and bytes once extracted.
MAX_FILES = 10_000
MAX_BYTES = 64 << 30


class LegacyStoreError(ModelStoreError):
    """A legacy model that cannot be imported as it is (reported per model by the import)."""


def import_legacy(
    source: ModelStore,
    target: ModelStore,
    *,
    domains: list[str] | None = None,
    progress: ProgressCallback | None = None,
    max_files: int = MAX_FILES,
    max_bytes: int = MAX_BYTES,
) -> ImportReport:
    """Import every model (of ``domains``) of the legacy store ``source`` into ``target``.

    ``source`` is opened on the legacy root (the directory or ``s3://bucket/prefix`` given to the
    legacy library), where ``operatorai-model-store/`` lives. Run one import at a time per target.
    """
    report = ImportReport()
    storage = source.storage
    found = [info.key[len(ROOT) : -1] for info in storage.list(ROOT, delimiter="/") if info.is_prefix]
    names = [d for d in found if d not in NOT_DOMAINS]
    if not found:
        raise LegacyStoreError(
            f"{source.url} holds no {ROOT}: give the legacy root (the directory or bucket prefix that the"
            " original modelstore was opened on), not a folder inside it"
        )
    if domains is not None:
        missing = [d for d in domains if d not in names]
        if missing:
            raise LegacyStoreError(f"the legacy store {source.url} has no domain {missing[0]!r} (it has: {', '.join(names) or 'none'})")
        names = [d for d in names if d in domains]
    counter = Progress(progress, None)  # sizes are learnt per archive
    for domain in names:
        try:
            check_name(domain, "domain name")
        except InvalidNameError as exc:
            report.problems.append(f"legacy domain {domain!r} not imported: {exc}")
            continue
        _import_domain(source, target, domain, report, counter, max_files, max_bytes)
    return report


@dataclass
class _LegacyModel:
    model_id: str
    meta: dict[str, Any]
    created: str  # as the legacy library wrote it
    archive: str | None
    archive_size: int | None


def _import_domain(source, target, domain: str, report: ImportReport, counter, max_files: int, max_bytes: int) -> None:
    storage = source.storage
    prefix = f"{ROOT}{domain}/"
    metas: dict[str, int] = {}
    in_state: dict[str, set[str]] = {}
    archives: dict[str, list[tuple[str, int | None]]] = {}
    for info in storage.list(prefix):
        parts = info.key[len(prefix) :].split("/")
        if len(parts) == 2 and parts[0] == "versions" and parts[1].endswith(".json"):
            metas[parts[1][: -len(".json")]] = info.size or 0
        elif len(parts) == 3 and parts[0] == "versions" and parts[2].endswith(".json"):
            in_state.setdefault(parts[1], set()).add(parts[2][: -len(".json")])
        elif len(parts) == 3 and parts[2] == "artifacts.tar.gz":
            archives.setdefault(parts[1], []).append((info.key, info.size))

    imported = _already_imported(target, domain)
    models: list[_LegacyModel] = []
    for model_id, size in metas.items():
        where = f"{domain}/{model_id}"
        if model_id in imported:
            report.skipped.append(f"{domain}:{imported[model_id]}")
            continue
        try:
            meta = _read_metadata(storage, f"{prefix}versions/{model_id}.json", size, domain, model_id)
        except LegacyStoreError as exc:
            report.problems.append(f"legacy model {where} not imported: {exc}")
            continue
        created = ((meta.get("code") or {}) if isinstance(meta.get("code"), dict) else {}).get("created")
        found = sorted(archives.get(model_id, []))
        key, size = found[-1] if found else (None, None)
        models.append(_LegacyModel(model_id, meta, created if isinstance(created, str) else "", key, size))

    models.sort(key=lambda m: (_parse_time(m.created) or datetime.min, m.model_id))
    versions: dict[str, int] = dict(imported)
    for model in models:
        try:
            versions[model.model_id] = _import_model(source, target, domain, model, report, counter, max_files, max_bytes)
        except LegacyStoreError as exc:
            report.problems.append(f"legacy model {domain}/{model.model_id} not imported: {exc}")
    _map_states(target, domain, in_state, versions, report)


def _already_imported(target, domain: str) -> dict[str, int]:
    """legacy model id -> version, for the versions of ``domain`` an earlier import made."""

    def legacy_id(document: dict[str, Any]) -> str | None:
        legacy = document.get("legacy")
        return legacy.get("model_id") if isinstance(legacy, dict) else None

    return imported_versions(target, domain, legacy_id)


def _read_metadata(storage, key: str, size: int, domain: str, model_id: str) -> dict[str, Any]:
    if size > MAX_METADATA_BYTES:
        raise LegacyStoreError(f"{key} is {size} bytes, more than legacy metadata ever is ({MAX_METADATA_BYTES})")
    try:
        data = storage.read(key, max_bytes=MAX_METADATA_BYTES)[0]
        if len(data) > MAX_METADATA_BYTES:
            raise LegacyStoreError(f"{key} grew past {MAX_METADATA_BYTES} bytes while importing")
        meta = json.loads(data)
    except KeyNotFoundError:
        raise LegacyStoreError(f"{key} was deleted while importing") from None
    except (ValueError, RecursionError) as exc:
        raise LegacyStoreError(f"{key} is not valid JSON ({str(exc)[:80]})") from None
    model = meta.get("model") if isinstance(meta, dict) else None
    if not isinstance(model, dict):
        raise LegacyStoreError(f"{key} has no 'model' object: not legacy modelstore metadata")
    if model.get("model_id") != model_id or model.get("domain") != domain:
        named = f"model {str(model.get('model_id'))[:60]!r} of domain {str(model.get('domain'))[:60]!r}"
        raise LegacyStoreError(f"{key} names {named}, not its own key")
    if not isinstance(model.get("model_type"), dict) or not isinstance(model["model_type"].get("library"), str):
        raise LegacyStoreError(f"{key}: model.model_type.library is missing")
    return meta


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y/%m/%d/%H:%M:%S")
    except (TypeError, ValueError):
        return None


def _import_model(source, target, domain: str, model: _LegacyModel, report: ImportReport, counter, max_files, max_bytes) -> int:
    if model.archive is None:
        raise LegacyStoreError("its artifacts.tar.gz is missing from the legacy store")
    if model.archive_size is not None and model.archive_size > max_bytes:
        raise LegacyStoreError(f"{model.archive} is {model.archive_size} bytes, over the limit of {max_bytes}")
    library = model.meta["model"]["model_type"]["library"]
    class_name = model.meta["model"]["model_type"].get("type")
    with target.cache.scratch("legacy-") as tmp:  # a killed import's files: reclaimed by the next
        archive = tmp / "artifacts.tar.gz"
        source.storage.get_file(model.archive, archive, progress=counter.advance, max_bytes=max_bytes)
        if archive.stat().st_size > max_bytes:
            raise LegacyStoreError(f"{model.archive} grew past the limit of {max_bytes} bytes while importing")
        files = Path(tmp) / "files"
        names = extract_archive(archive, files, model.archive, max_files=max_files, max_bytes=max_bytes)
        flavor, note = legacy_flavor(library, class_name if isinstance(class_name, str) else None, files, names)
        model_names = [n for n in names if not n.startswith("extras/")]
        extras = [files / n for n in names if n.startswith("extras/")]
        created = _parse_time(model.created)
        legacy = {
            "model_id": model.model_id,
            "created": created.isoformat() if created else model.created,
            "domain": domain,
            "library": library,
            "type": class_name,
            "modelstore": model.meta.get("modelstore"),
            "archive": model.archive,
            "code": model.meta.get("code"),
            "parameters": model.meta["model"].get("parameters"),
            "data": model.meta["model"].get("data"),
            "extra": model.meta.get("extra"),
            "note": note,
        }
        code = model.meta.get("code") if isinstance(model.meta.get("code"), dict) else {}
        deps = code.get("dependencies") if isinstance(code.get("dependencies"), dict) else None
        metadata = {"legacy": legacy, "git": None, "runtime": None, "dependencies": deps}
        # The legacy archive's top level is the model, extras/ its extras: stored under the same names.
        files_of = ImportedFiles([files / n for n in _top_level(model_names)], flavor)
        extra_paths = sorted((files / "extras").iterdir()) if extras else None
        try:
            tags = check_tags({"legacy_id": model.model_id})
            v = target.uploader.upload(domain, files_of, extra_paths, {"tags": tags}, metadata=metadata)
        except InvalidNameError as exc:  # files that could not be loaded back side by side, an odd id
            raise LegacyStoreError(str(exc)) from None
    report.copied.append(f"{domain}:{v.version}")
    report.bytes_moved += v.bytes_written or 0
    report.objects += len({f.sha256 for f in v.files})
    report.notes.append(f"{domain}:{v.version} (legacy {library} model {model.model_id}): {note}")
    return v.version


def _top_level(names: list[str]) -> list[str]:
    """Top-level entries (a file, or a directory once) of the model's files, in order."""
    seen: list[str] = []
    for name in names:
        top = name.split("/", 1)[0]
        if top not in seen:
            seen.append(top)
    return seen


def legacy_flavor(library: str, class_name: str | None, directory: Path, names: list[str]) -> tuple[Flavor, str]:
    """The flavor a legacy model maps to, and the note that says how it loads (``names`` is
    updated in place if a file is stored under another name).

    Only formats this project's plugins read as they are map to a plugin (see :data:`MAPPERS`);
    the files are not loaded here, and each plugin checks them as it checks its own at load.
    Everything else is imported as raw files (``load`` returns their paths); files that hold
    pickles mark the version unsafe, so that it loads only with ``trust=True``.
    """
    model_files = [n for n in names if not n.startswith("extras/")]
    mapper = MAPPERS.get(library)
    mapped = mapper(class_name, directory, names, model_files) if mapper is not None else None
    if mapped is not None:
        return mapped
    pickles = [n for n in model_files if is_pickle(directory / n)]
    flavor = Flavor(name=RAW_FILES, format=RAW_FILES, plugin="modelstore-core", model_class=class_name, safe=not pickles)
    note = (
        f"imported as raw files ({', '.join(model_files)}): no plugin here reads the legacy {library} format"
        " as it is; load() returns the paths"
    )
    if library == "transformers":
        note += (
            " (modelstore-transformers takes a legacy transformers/ folder that holds a model alone, with safetensors"
            " weights and a config without custom code; this one holds more, or other, files)"
        )
    if pickles:
        note += f"; {', '.join(pickles)} hold pickles, so it loads only with trust=True"
    return flavor, note


#: ``options["imported_from"]`` of a mapped version: the version's files are the legacy library's.
IMPORTED_FROM = "modelstore 0.0.x"
_Mapped = tuple[Flavor, str] | None


def _rename(directory: Path, names: list[str], old: str, new: str) -> None:
    (directory / old).rename(directory / new)
    names[names.index(old)] = new


def _map_sklearn(class_name: str | None, directory: Path, names: list[str], model_files: list[str]) -> _Mapped:
    """``model.joblib`` (a pickle) -> the sklearn flavor's pickle format."""
    if "model.joblib" not in model_files:
        return None
    flavor = Flavor(
        name="sklearn",
        format="pickle",
        plugin="modelstore-sklearn",
        model_class=class_name,
        safe=False,
        options={"file": "model.joblib", "imported_from": IMPORTED_FROM},
    )
    return flavor, "a joblib pickle, loaded by modelstore-sklearn only with load(..., trust=True)"


def _map_xgboost(class_name: str | None, directory: Path, names: list[str], model_files: list[str]) -> _Mapped:
    """``model.xgboost`` in UBJSON (what xgboost >= 2.1 writes for an extension it does not know)
    -> the xgboost flavor, stored as ``model.ubj`` (the name that format is read from)."""
    if class_name not in XGBOOST_CLASSES or "model.xgboost" not in model_files or "model.ubj" in names:
        return None
    if not _is_ubjson(directory / "model.xgboost"):
        return None  # xgboost's older binary format: no plugin here reads it
    _rename(directory, names, "model.xgboost", "model.ubj")
    flavor = Flavor(
        name="xgboost",
        format="ubjson",
        plugin="modelstore-xgboost",
        model_class=f"xgboost.{class_name}",
        options={"file": "model.ubj", "class": class_name, "imported_from": IMPORTED_FROM},
    )
    note = (
        "model.xgboost (UBJSON) stored as model.ubj, loaded by modelstore-xgboost; scikit-learn API"
        " parameters other than those xgboost saves with the trees keep their defaults (the legacy"
        " ones are in metadata['legacy']['parameters'])"
    )
    return flavor, note


def _map_lightgbm(class_name: str | None, directory: Path, names: list[str], model_files: list[str]) -> _Mapped:
    """A legacy ``lightgbm.Booster`` (the only class the legacy manager stores): ``model.txt``,
    LightGBM's text model format, -> the lightgbm flavor as modelstore-lightgbm records a Booster.
    ``best_iteration`` is -1 (every tree in the file), what LightGBM gives a booster read from
    text; the legacy library wrote the trees up to the booster's best iteration. Its
    ``model.json`` (``dump_model()``, for reading) is kept beside it."""
    if class_name != "Booster" or "model.txt" not in model_files:
        return None
    flavor = Flavor(
        name="lightgbm",
        format="text",
        plugin="modelstore-lightgbm",
        model_class="lightgbm.basic.Booster",
        options={"file": "model.txt", "class": "Booster", "best_iteration": -1, "imported_from": IMPORTED_FROM},
    )
    return flavor, "model.txt (LightGBM's text format), loaded by modelstore-lightgbm as a Booster after its checks"


def _map_onnx(class_name: str | None, directory: Path, names: list[str], model_files: list[str]) -> _Mapped:
    """``model.onnx`` (``ModelProto.SerializeToString()``, tensors inside) -> the onnx flavor."""
    if class_name != "ModelProto" or "model.onnx" not in model_files or "model.onnx.data" in names:
        return None
    flavor = Flavor(
        name="onnx",
        format="onnx",
        plugin="modelstore-onnx",
        model_class="onnx.onnx_ml_pb2.ModelProto",
        options={"file": "model.onnx", "data_files": [], "imported_from": IMPORTED_FROM},
    )
    return flavor, "model.onnx, loaded by modelstore-onnx (a ModelProto, or with session=True an InferenceSession) after onnx.checker"


#: A legacy Prophet file larger than this is imported as raw files (it is decoded in memory).
MAX_PROPHET_BYTES = 1 << 30


def _map_prophet(class_name: str | None, directory: Path, names: list[str], model_files: list[str]) -> _Mapped:
    """``prophet_model.json`` -> the prophet flavor's ``model.json``. The legacy library wrote
    ``json.dumps(model_to_json(model))``: a JSON string whose text is the model's JSON. That text
    is stored; modelstore-prophet checks it at load as it checks its own."""
    legacy_file = directory / "prophet_model.json"
    if class_name != "Prophet" or "prophet_model.json" not in model_files or "model.json" in names:
        return None
    if legacy_file.stat().st_size > MAX_PROPHET_BYTES:
        return None
    try:
        text = json.loads(legacy_file.read_bytes())
    except (ValueError, RecursionError):
        return None  # not what the legacy library writes: kept as it is, as raw files
    if not isinstance(text, str):
        return None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate ("\ud800"): not what model_to_json writes
        return None
    (directory / "model.json").write_bytes(data)
    legacy_file.unlink()
    names[names.index("prophet_model.json")] = "model.json"
    flavor = Flavor(
        name="prophet",
        format="json",
        plugin="modelstore-prophet",
        model_class="prophet.forecaster.Prophet",
        options={"file": "model.json", "imported_from": IMPORTED_FROM},
    )
    note = "prophet_model.json (model_to_json, JSON-encoded once more) stored decoded as model.json, loaded by modelstore-prophet"
    return flavor, note + " after its checks"


def _map_statsmodels(class_name: str | None, directory: Path, names: list[str], model_files: list[str]) -> _Mapped:
    """``model.pkl`` (``results.save()``, a pickle) -> the statsmodels flavor, stored as
    ``model.pickle`` as modelstore-statsmodels names it; unsafe, as every statsmodels version is."""
    if "model.pkl" not in model_files or "model.pickle" in names:
        return None
    _rename(directory, names, "model.pkl", "model.pickle")
    flavor = Flavor(
        name="statsmodels",
        format="pickle",
        plugin="modelstore-statsmodels",
        model_class=class_name,
        safe=False,
        options={"file": "model.pickle", "imported_from": IMPORTED_FROM},
    )
    note = "model.pkl (a statsmodels pickle) stored as model.pickle, loaded by modelstore-statsmodels"
    return flavor, note + " only with load(..., trust=True)"


MAX_CONFIG_BYTES = 16 << 20


def _map_transformers(class_name: str | None, directory: Path, names: list[str], model_files: list[str]) -> _Mapped:
    """A legacy ``transformers/`` folder that holds a model alone, with safetensors weights and a
    config that names no custom code -> the transformers flavor's ``model`` kind, its files moved
    to the top as modelstore-transformers stores them. The legacy record names the class without
    its module, so no auto class is recorded: it loads with ``load(..., model=TheClass)``."""
    inside = [n for n in model_files if n.startswith("transformers/")]
    others = [n for n in model_files if not n.startswith("transformers/")]
    if not isinstance(class_name, str) or not class_name.isidentifier() or "transformers/config.json" not in inside:
        return None
    if not any(n.endswith(".safetensors") for n in inside) or others not in ([], ["model-info.json"]):
        return None
    if not all(TRANSFORMERS_MODEL_FILES.fullmatch(n[len("transformers/") :]) for n in inside):
        return None  # a tokenizer or processor beside the model, pickled or TensorFlow weights
    config = directory / "transformers" / "config.json"
    if config.stat().st_size > MAX_CONFIG_BYTES:
        return None
    try:
        doc = json.loads(config.read_bytes())
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict) or "auto_map" in doc:
        return None  # not a config, or one that needs custom code: kept as it is
    for name in inside:
        top = name[len("transformers/") :]
        (directory / name).rename(directory / top)
        names[names.index(name)] = top
    (directory / "transformers").rmdir()
    flavor = Flavor(
        name="transformers",
        format="safetensors",
        plugin="modelstore-transformers",
        model_class=class_name,
        options={"kind": "model", "auto_class": None, "imported_from": IMPORTED_FROM},
    )
    note = (
        f"the transformers/ folder (safetensors weights) stored as modelstore-transformers stores a model; the legacy"
        f" record names no module for {class_name}, so load it with load(..., model=transformers.{class_name})"
    )
    return flavor, note


#: legacy ``model_type.library`` -> what maps its models to a plugin's flavor (``None``: raw files).
MAPPERS = {
    "sklearn": _map_sklearn,
    "xgboost": _map_xgboost,
    "lightgbm": _map_lightgbm,
    "onnx": _map_onnx,
    "prophet": _map_prophet,
    "statsmodels": _map_statsmodels,
    "transformers": _map_transformers,
}


def _is_ubjson(path: Path) -> bool:
    """An UBJSON object: ``{`` then a key length's type marker (JSON has a quote or a space there;
    xgboost's old binary format starts otherwise)."""
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[:1] == b"{" and head[1:] in (b"i", b"U", b"I", b"l", b"L")


def extract_archive(archive: Path, directory: Path, key: str, *, max_files: int = MAX_FILES, max_bytes: int = MAX_BYTES) -> list[str]:
    """Extract the regular files of a legacy ``artifacts.tar.gz`` into ``directory``; their names.

    Each member passes :func:`tarfile.data_filter` (PEP 706: no absolute names, ``..``, links out,
    devices or special modes), then this store's own rules. Refused (:class:`LegacyStoreError`,
    nothing kept): a link, device or other special member, a name that is not a valid stored file
    name here (hidden parts...), a name twice, more than ``max_files`` members, more than
    ``max_bytes`` once extracted, or a member whose bytes do not match its declared size.
    """
    directory.mkdir(parents=True)
    inside = os.path.realpath(directory)
    names: list[str] = []
    total = 0
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for count, member in enumerate(tar, 1):
                if count > max_files:
                    raise LegacyStoreError(f"{key} holds more than {max_files} members")
                name = member.name[2:] if member.name.startswith("./") else member.name
                try:
                    tarfile.data_filter(member, str(directory))
                except tarfile.FilterError as exc:
                    raise LegacyStoreError(f"{key}: member {name[:100]!r} is refused: {str(exc)[:150]}") from None
                if member.isdir():
                    continue
                if not member.isreg():
                    kind = "link" if member.issym() or member.islnk() else "special file"
                    raise LegacyStoreError(f"{key}: member {name[:100]!r} is a {kind}; only regular files are imported")
                try:
                    check_file_path(name)
                except InvalidNameError as exc:
                    raise LegacyStoreError(f"{key}: member {name[:100]!r}: {exc}") from None
                total += member.size
                if total > max_bytes:
                    raise LegacyStoreError(f"{key} extracts to more than {max_bytes} bytes")
                dest = directory / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                if os.path.commonpath([inside, os.path.realpath(dest.parent)]) != inside:
                    raise LegacyStoreError(f"{key}: member {name[:100]!r} would land outside the extraction directory")
                stream = tar.extractfile(member)
                if stream is None:
                    raise LegacyStoreError(f"{key}: member {name[:100]!r} cannot be read")
                try:
                    with stream, open(dest, "xb") as out:
                        written = _copy_limited(stream, out, member.size + 1)
                except FileExistsError:
                    raise LegacyStoreError(f"{key}: {name[:100]!r} is in the archive twice") from None
                if written != member.size:
                    raise LegacyStoreError(f"{key}: member {name[:100]!r} holds {written} bytes, not the {member.size} it declares")
                names.append(name)
    except (tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise LegacyStoreError(f"{key} is not a readable tar.gz archive ({type(exc).__name__}: {str(exc)[:100]})") from None
    except LegacyStoreError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    if not names:
        raise LegacyStoreError(f"{key} holds no files")
    return names


def _copy_limited(stream, out, limit: int) -> int:
    written = 0
    while written < limit and (chunk := stream.read(min(1 << 20, limit - written))):
        out.write(chunk)
        written += len(chunk)
    return written


def _map_states(target, domain: str, in_state: dict[str, set[str]], versions: dict[str, int], report: ImportReport) -> None:
    """A legacy state that names exactly one imported model of the domain becomes a state of its version."""
    if not versions:
        return
    current = target.states(domain) if versions else {}
    for state, members in sorted(in_state.items()):
        if state in RESERVED_STATES:
            continue
        members = {m for m in members if m in versions}
        if not members:
            continue
        try:
            check_name(state, "state name")
        except InvalidNameError as exc:
            report.notes.append(f"legacy state {state!r} of {domain!r} not mapped: {exc}")
            continue
        if len(members) > 1:
            shown = ", ".join(f"version {versions[m]}" for m in sorted(members, key=versions.get))
            report.notes.append(
                f"legacy state {state!r} of {domain!r} names {len(members)} models ({shown}); a state here names one"
                f" version, so it was not mapped: `modelstore state set {domain} VERSION {state}` picks one"
            )
            continue
        version = versions[members.pop()]
        if current.get(state) != version:
            target.set_state(domain, version, state)
            report.states.append(f"{domain}@{state}={version}")
