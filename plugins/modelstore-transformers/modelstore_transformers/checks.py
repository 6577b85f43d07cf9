"""What a folder written by ``save_pretrained`` may hold, checked before transformers reads it.

A store is untrusted input: anyone who can write to the bucket can store files and a record whose
sha256 agree. transformers would unpickle ``pytorch_model.bin``, import Python files a config's
``auto_map`` names (with ``trust_remote_code``), follow a shard index to any path, and hand a
safetensors file to compiled code. So, before any transformers call, every file of the folder
must be one that ``save_pretrained`` writes without pickle or code, then (on load) every file is
verified against its record (``verify``) before any byte of one is read, and:

- no pickle-based weights (``.bin``, ``.pt``, ``.ckpt``, ...) and no Python file;
- JSON files are at most :data:`MAX_JSON` bytes (``tokenizer.json`` :data:`MAX_TOKENIZER_JSON`),
  hold one JSON object (no repeated keys, no ``NaN``), and none names custom code (``auto_map``);
  ``config.json``'s ``num_labels`` and layer counts (transformers builds that many objects before
  reading a weight) are at most :data:`MAX_LABELS` and :data:`MAX_LAYERS`;
- a shard index (``*.safetensors.index.json``) maps tensors to ``.safetensors`` files of the same
  folder only;
- every ``.safetensors`` header passes the reference reader's checks (the ``safetensors`` crate:
  header length, dtypes, shapes, offsets tiling the data exactly) before transformers opens it;
- a shard index and the shards it names agree: each tensor it maps is in that shard, and each
  tensor of those shards is mapped to the shard that holds it (none in two shards, none unmapped).

Each failure raises :class:`CorruptArtifactError` naming the file and the check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from modelstore_core.plugin_api import CorruptArtifactError

#: Suffixes of files ``save_pretrained`` writes for models, tokenizers and processors.
ALLOWED_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".jinja")
#: Weights formats that unpickle (or may: ``.h5``/``.msgpack`` are TensorFlow/Flax formats
#: transformers can convert through pickle-loading code paths).
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".h5", ".msgpack", ".npy", ".npz")
MAX_JSON = 16 * 1024 * 1024
#: the largest tokenizers ship ~35 MB of tokenizer.json; transformers parses it with ``json`` (memory ~10x)
MAX_TOKENIZER_JSON = 128 * 1024 * 1024
INDEX_SUFFIX = ".safetensors.index.json"
MAX_LABELS = 1_000_000
#: config keys that count layers (the deepest published models have ~130; each layer is built before any weight is read)
LAYER_COUNTS = ("num_hidden_layers", "num_layers", "n_layer", "n_layers", "encoder_layers", "decoder_layers",
                "num_encoder_layers", "num_decoder_layers")  # fmt: skip
MAX_LAYERS = 1024


def check_folder(
    folder: Path,
    names: list[str],
    *,
    required: str | None = None,
    prefix: str = "",
    verify: Callable[[str], Path] | None = None,
) -> dict[str, dict[str, Any]]:
    """Check the files ``names`` (relative to ``folder``, flat) as described above.

    :param required: a file the folder must hold (``config.json`` for a model).
    :param prefix: the folder's place in the version (``"model/"``), for error messages.
    :param verify: on load, the path of file ``name`` once verified (the core's ``verified.path``:
        ``IntegrityError`` unless it holds the recorded bytes); every file is verified, after the
        name checks and before any is read, so the checks and transformers read verified bytes.
    :return: the parsed JSON objects of the JSON files, by name.
    """
    for name in names:
        _check_name(name, prefix + name)
    if required is not None and required not in names:
        raise CorruptArtifactError(prefix + required, "is missing: save_pretrained always writes it")
    paths = {name: verify(name) if verify is not None else folder / name for name in names}
    parsed: dict[str, dict[str, Any]] = {}
    for name in names:
        path = paths[name]
        if name.endswith(".json"):
            doc = parsed[name] = _json_object(path, prefix + name, MAX_TOKENIZER_JSON if name == "tokenizer.json" else MAX_JSON)
            if "auto_map" in doc:
                raise CorruptArtifactError(
                    prefix + name,
                    f"names custom code (auto_map: {str(doc['auto_map'])[:120]}) that transformers would import from the"
                    " store; modelstore-transformers never runs code from a store (trust_remote_code is never set)."
                    " Review the files (store.download) and load them yourself if you trust them",
                )
    if "config.json" in parsed:
        _check_counts(parsed["config.json"], prefix + "config.json", "")
    indexes = {name: doc for name, doc in parsed.items() if name.endswith(INDEX_SUFFIX)}
    for name, doc in indexes.items():
        _check_index(prefix + name, doc, names)
    tensors = {name: check_safetensors(paths[name], prefix + name) for name in names if name.endswith(".safetensors")}
    for name, doc in indexes.items():
        _check_weight_map(prefix + name, doc["weight_map"], tensors)
    return parsed


def _check_counts(config: dict[str, Any], label: str, where: str) -> None:
    """Counts that make transformers build that many objects before any weight is read: a dict of
    ``num_labels`` labels, ``num_hidden_layers`` modules (in nested configs too: ``text_config``...)."""
    for key, value in config.items():
        if isinstance(value, dict):
            _check_counts(value, label, f"{where}{key}.")
            continue
        limit = MAX_LABELS if key == "num_labels" else MAX_LAYERS if key in LAYER_COUNTS else None
        if limit is not None and value is not None and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit):
            raise CorruptArtifactError(label, f"has {where}{key} {str(value)[:40]}, not an integer in 0..{limit}")


def _check_name(name: str, label: str) -> None:
    pure = PurePosixPath(name)
    if len(pure.parts) != 1 or name in (".", ".."):
        raise CorruptArtifactError(label, "is not a plain file name: save_pretrained writes a flat folder")
    lower = name.lower()
    if lower.endswith(PICKLE_SUFFIXES):
        raise CorruptArtifactError(
            label, "holds pickle-based weights, which can execute code when loaded; modelstore-transformers loads safetensors only"
        )
    if lower.endswith((".py", ".pyc", ".so")):
        raise CorruptArtifactError(label, "is code; modelstore-transformers never runs code from a store (trust_remote_code is never set)")
    if not lower.endswith(ALLOWED_SUFFIXES):
        raise CorruptArtifactError(label, f"is not a file save_pretrained writes (allowed: {', '.join(ALLOWED_SUFFIXES)})")


def _check_size(path: Path, label: str, limit: int) -> int:
    size = path.stat().st_size
    if size > limit:
        raise CorruptArtifactError(label, f"is {size} bytes, over the {limit} byte limit for this file")
    return size


def _json_object(path: Path, label: str, limit: int) -> dict[str, Any]:
    _check_size(path, label, limit)

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out = dict(items)
        if len(out) != len(items):
            raise CorruptArtifactError(label, "repeats a key (another reader could pick the other value)")
        return out

    def constant(name: str) -> Any:
        raise CorruptArtifactError(label, f"holds {name}, which is not JSON")

    try:
        doc = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except (UnicodeError, ValueError, RecursionError) as exc:
        raise CorruptArtifactError(label, f"is not valid UTF-8 JSON ({' '.join(str(exc).split())[:100]})") from None
    if not isinstance(doc, dict):
        raise CorruptArtifactError(label, "is not a JSON object")
    return doc


def _check_index(label: str, doc: dict[str, Any], names: list[str]) -> None:
    weight_map = doc.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise CorruptArtifactError(label, "has no weight_map object")
    shards = {n for n in names if n.endswith(".safetensors")}
    for tensor, shard in weight_map.items():
        if not isinstance(shard, str) or shard not in shards:
            raise CorruptArtifactError(
                label,
                f"maps tensor {str(tensor)[:80]!r} to {str(shard)[:80]!r}, which is not a .safetensors file of this folder",
            )


def _check_weight_map(label: str, weight_map: dict[str, str], tensors: dict[str, set[str]]) -> None:
    """The index (names already checked) against the tensors each shard it names holds: transformers
    reads each tensor from the shard the index names, so a tensor missing there would be filled with
    random values, and one stored twice could be read from either shard."""
    for tensor, shard in weight_map.items():
        if tensor not in tensors[shard]:
            raise CorruptArtifactError(label, f"maps tensor {tensor[:80]!r} to {shard[:80]!r}, which does not hold it")
    for shard in sorted(set(weight_map.values())):
        for tensor in sorted(tensors[shard]):
            if tensor not in weight_map:
                raise CorruptArtifactError(label, f"does not map tensor {tensor[:80]!r}, which {shard[:80]!r} holds")
            if weight_map[tensor] != shard:
                problem = f"maps tensor {tensor[:80]!r} to {weight_map[tensor][:80]!r}, but {shard[:80]!r} holds it too"
                raise CorruptArtifactError(label, problem)


def check_safetensors(path: Path, label: str) -> set[str]:
    """The reference reader's header checks (the ``safetensors`` crate), without reading any tensor;
    returns the file's tensor names."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return set(f.keys())
    except SafetensorError as exc:
        raise CorruptArtifactError(label, f"is not valid safetensors ({' '.join(str(exc).split())[:160]})") from None
