"""modelstore plugin for PyTorch: modules, state dicts and tensors, stored as safetensors.

Upload:

- an ``nn.Module``: its ``state_dict()`` as ``model.safetensors``; with ``pickle_module=True``
  also ``torch.save(module)`` as ``module.pt`` (a pickle, read only with ``trust=True``);
- a ``dict``/``OrderedDict`` of ``str -> Tensor`` (a state dict) or a single ``Tensor``:
  ``model.safetensors``;
- weights over ``shard_size`` bytes (an upload option; default :data:`SHARD_SIZE`) as shards of
  about equal size, ``model-00001-of-0000N.safetensors``, written and hashed several at once,
  with Hugging Face's ``model.safetensors.index.json`` beside them. Shards are cut by the tensors'
  names, dtypes and shapes, never their values: a fine-tune that changes a few tensors changes
  only the shards that hold them, and the store (content-addressed) keeps the others once.

Load (``ModelStore.load`` options):

- ``model=``: an ``nn.Module`` instance, or a factory (class, function, ``lambda: MyNet()``)
  returning one, that the weights are loaded into; works for modules and state dicts;
- ``trust=True`` (modules uploaded with ``pickle_module=True``, no ``model=``): unpickle ``module.pt``;
- ``device=``: where tensors go (default: the CPU; an instance passed as ``model=`` stays where it is);
- ``strict=`` (default ``True``): as ``nn.Module.load_state_dict``;
- ``as_state_dict=True``: the stored state dict of a module, without any module.

Shared tensors (tied weights) are stored once and come back shared. Files are written and read
one tensor at a time, so an upload or a load holds about one copy of the weights. A load reads
each file once, through the core's verifying reader (sha256 checked at its end, before anything is
returned), shards several at once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter, OrderedDict
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import (
    CorruptArtifactError,
    CorruptRecordError,
    Flavor,
    FlavorPlugin,
    UntrustedArtifactError,
    UsageError,
    comes_from,
    model_file,
    qualified_name,
)

FLAVOR = "torch"
PLUGIN = "modelstore-torch"
WEIGHTS = "model.safetensors"
PICKLE = "module.pt"
META_KEY = "modelstore_torch"  # our key in the safetensors __metadata__ (besides "format": "pt")
LOAD_CHUNK = 64 * 1024 * 1024  # bytes of tensors handed to load_state_dict at once
#: Default ``shard_size``: weights above it are stored as shards of about equal size (a 400 MB
#: model as 24), so that several cores write, hash and verify them at once, and a version that
#: changes a few tensors of its parent stores and moves about those tensors, not the whole model.
SHARD_SIZE = 16 * 1024 * 1024


# --- recognising models without importing torch -------------------------------------------


def _is_keras(model: Any) -> bool:
    """Keras 3 models on the torch backend are ``nn.Module`` subclasses; they belong to modelstore-keras."""
    return comes_from(model, "keras", "tf_keras")


def _kind(model: Any) -> str | None:
    """``"module"``, ``"state_dict"``, ``"tensor"`` or ``None``. Never imports torch.

    A torch object can only exist once ``torch`` is imported, so if it is not in
    ``sys.modules`` the model is not ours.
    """
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "Tensor") or not hasattr(torch, "nn"):
        return None
    if isinstance(model, torch.nn.Module):
        return None if _is_keras(model) else "module"
    if isinstance(model, torch.Tensor):
        return "tensor"
    if isinstance(model, dict) and model and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in model.items()):
        return "state_dict"
    return None


def _state_dict(model: Any, kind: str) -> dict[str, Any]:
    if kind == "module":
        return model.state_dict()
    if kind == "tensor":
        return {"tensor": model}
    return model


def _aliases(tensors: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """Names to store and ``{alias: stored name}`` for tensors that are exactly the same view of one storage."""
    seen: dict[tuple, str] = {}
    stored, aliases = [], {}
    for name, t in tensors.items():
        key = (
            str(t.device),
            t.untyped_storage().data_ptr(),
            t.storage_offset(),
            t.dtype,
            tuple(t.shape),
            tuple(t.stride()),
        )
        if t.numel() and t.untyped_storage().data_ptr() and key in seen:
            aliases[name] = seen[key]
        else:
            seen.setdefault(key, name)
            stored.append(name)
    return stored, aliases


# --- hooks --------------------------------------------------------------------------------


class TorchPlugin(FlavorPlugin):
    flavor = FLAVOR
    modules = ("torch",)

    def handles(self, model: Any) -> bool:
        """Modules (Keras' excepted), state dicts and tensors; see :func:`_kind`."""
        return _kind(model) is not None

    def serialize(self, model: Any, directory: Path, options: dict[str, Any]) -> Flavor:
        kind = _kind(model)
        import torch

        from . import weights

        pickle_module = bool(options.get("pickle_module", False))
        if pickle_module and kind != "module":
            raise TypeError("pickle_module=True applies to nn.Module uploads only")

        tensors = _state_dict(model, kind)
        bad = [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
        if bad:
            raise TypeError(
                f"the state dict of this {qualified_name(model)} holds non-tensor entries ({', '.join(map(repr, bad[:5]))}),"
                " which safetensors cannot store; store them separately (e.g. as extras=)"
            )
        shard_size = options.get("shard_size", SHARD_SIZE)
        if isinstance(shard_size, bool) or not isinstance(shard_size, int) or shard_size < 1:
            raise ValueError(f"shard_size must be a positive number of bytes, not {shard_size!r}")
        stored, aliases = _aliases(tensors)
        extra = {"order": list(tensors), "aliases": aliases}
        metadata = {"format": "pt", META_KEY: json.dumps(extra, separators=(",", ":"), sort_keys=True)}
        pairs = [(name, tensors[name]) for name in stored]
        # Hashed as they are written: the core stores the files without reading them again.
        if sum(t.numel() * t.element_size() for _, t in pairs) > shard_size:
            digests = weights.write_sharded(directory, pairs, metadata, shard_size)
            files = {name: {"format": "safetensors", "safe": True} for name in digests}
            files[weights.INDEX] = {"format": "json", "safe": True}
            layout = {"weights": None, "shards": list(digests), "index": weights.INDEX}
        else:
            digests = {WEIGHTS: weights.write(directory / WEIGHTS, pairs, metadata)}
            files = {WEIGHTS: {"format": "safetensors", "safe": True}}
            layout = {"weights": WEIGHTS}
        if pickle_module:
            torch.save(model, directory / PICKLE)
            files[PICKLE] = {"format": "torch-pickle", "safe": False}

        return Flavor(
            name=FLAVOR,
            format="safetensors",
            plugin=PLUGIN,
            model_class=qualified_name(model),
            # The weights load without executing code (into a module the caller provides); only the
            # optional pickle beside them needs trust=True, recorded per file below.
            safe=True,
            dependencies=["torch"],
            digests=digests,
            options={
                "kind": kind,
                "container": "OrderedDict" if isinstance(model, OrderedDict) or kind == "module" else "dict",
                **layout,
                "pickle": PICKLE if pickle_module else None,
                "files": files,
            },
        )

    def deserialize(self, flavor: Flavor, files: list[str], options: dict[str, Any], verified) -> Any:
        import torch

        recorded = flavor.options
        kind = recorded.get("kind", "module")
        device = options.get("device")
        target = options.get("model")

        if _pickle_only(recorded) and (target is not None or options.get("as_state_dict") or not options.get("trust")):
            raise UntrustedArtifactError(
                f"this version holds a {flavor.model_class or 'module'} only as a pickle ({recorded['pickle']}, imported from"
                f" {recorded.get('imported_from') or 'elsewhere'}; no weights were stored beside it, since that would have"
                " meant unpickling it): pass trust=True, without model= or as_state_dict=, to unpickle it, which can"
                " execute arbitrary code: do that only for artifacts from a source you trust"
            )
        if target is not None:
            if kind == "tensor":
                raise TypeError("this version stores a single tensor; load it without model=")
            module = _instantiate(target, flavor)
            with _Weights(verified, recorded, files) as stored:
                if _on_meta(module):  # a skeleton built under torch.device("meta"): the weights are allocated once
                    _assign_into(module, stored, device, strict=options.get("strict", True))
                    return module
                _load_into(module, stored, strict=options.get("strict", True))
            return module.to(device) if device is not None else module

        if kind == "module" and not options.get("as_state_dict"):
            pickle_name = recorded.get("pickle")
            cls = flavor.model_class or "module"
            short = cls.rsplit(".", 1)[-1]
            if pickle_name and not options.get("trust"):
                raise UntrustedArtifactError(
                    f"this version holds a {cls}: load its safetensors weights, without running any code from the store,"
                    f" into a module you build: load(..., model={short}(...)) or a factory, model=lambda: {short}(...);"
                    f" or pass trust=True to unpickle the module stored beside them ({pickle_name}), which can execute"
                    " arbitrary code: do that only for artifacts from a source you trust"
                )
            if pickle_name:
                model_file(verified.directory, files, pickle_name, option="pickle")
                return torch.load(verified.path(pickle_name), map_location=device or "cpu", weights_only=False)
            raise UsageError(
                f"this version holds only the weights of a {cls}: pass load(..., model={short}(...)) or a factory"
                f" (model=lambda: {short}(...)) to load them into a module, or as_state_dict=True for the state dict"
                " (upload with pickle_module=True to also store the whole module, loadable with trust=True)"
            )

        with _Weights(verified, recorded, files) as stored:
            loaded = _read_dict(stored, device, ordered=recorded.get("container") == "OrderedDict")
        if kind == "tensor":
            if list(loaded) != ["tensor"]:
                problem = f"says 'tensor', but the weights hold {len(loaded)} tensors"
                raise CorruptRecordError("the version record", "flavor.options.kind", problem)
            return loaded["tensor"]
        return loaded

    def metadata(self, model: Any, flavor: Flavor) -> dict[str, Any]:
        import torch

        kind = flavor.options["kind"]
        tensors = _state_dict(model, kind)
        stored, aliases = _aliases(tensors)
        dtypes = Counter(str(tensors[k].dtype).removeprefix("torch.") for k in stored)
        info: dict[str, Any] = {
            "framework": "torch",
            "framework_version": torch.__version__,
            "kind": kind,
            "state_dict_keys": len(tensors),
            "shared_tensors": len(aliases),
            "tensor_bytes": sum(tensors[k].numel() * tensors[k].element_size() for k in stored),
            "dtypes": dict(sorted(dtypes.items())),
        }
        if kind == "module":
            params = list(model.parameters())  # shared parameters once
            info["parameters"] = sum(p.numel() for p in params)
            info["trainable_parameters"] = sum(p.numel() for p in params if p.requires_grad)
            info["buffers"] = sum(b.numel() for b in model.buffers())
            info["training"] = bool(model.training)
        return {"model": info}


plugin = TorchPlugin()


# --- loading helpers ------------------------------------------------------------------------


def _instantiate(target: Any, flavor: Flavor):
    import torch

    module = target if isinstance(target, torch.nn.Module) else target() if callable(target) else None
    if not isinstance(module, torch.nn.Module):
        raise TypeError(
            f"model= must be an nn.Module or a factory returning one (got {type(module if callable(target) else target).__name__});"
            f" the stored weights come from a {flavor.model_class}"
        )
    return module


def _pickle_only(recorded: dict[str, Any]) -> bool:
    """A module stored as a pickle alone (an import: it was never unpickled to write its weights)."""
    no_weights = recorded.get("weights", WEIGHTS) is None and not recorded.get("shards")
    return recorded.get("kind") == "module" and no_weights and bool(recorded.get("pickle"))


def _weight_files(recorded: dict[str, Any], files: list[str]) -> list[str]:
    """The safetensors files the record names (``options.shards``, else ``options.weights``): each
    must be one of the version's verified model files (the record is untrusted)."""
    shards = recorded.get("shards")
    if shards is None:
        names = [recorded.get("weights", WEIGHTS)]
        option = "weights"
    elif isinstance(shards, list) and shards and len(set(map(str, shards))) == len(shards):
        names, option = shards, "shards"
    else:
        raise CorruptRecordError("the version record", "flavor.options.shards", "is not a list of distinct file names")
    for name in names:
        model_file(Path("."), files, name, option=option)  # only the check: the file is read through ``verified``
    return names


def _index_file(recorded: dict[str, Any], files: list[str]) -> str | None:
    """The shard index the record names (``options.index``) beside shards, one of the version's
    verified model files; ``None`` for a single file."""
    if recorded.get("shards") is None:
        return None
    index = recorded.get("index")
    model_file(Path("."), files, index, option="index")
    return index


#: The largest shard index read (an entry per tensor: ~100 bytes each).
MAX_INDEX = 16 * 1024 * 1024


class _Weights:
    """The version's safetensors files (one, or the shards), open through the core's verifying
    reader, headers parsed and checked together: every tensor name in one file only, every name of
    the plugin's ``order`` in a file (or an alias of one), and the shard index in agreement."""

    def __init__(self, verified, recorded: dict[str, Any], files: list[str]):
        from . import weights

        names, index = _weight_files(recorded, files), _index_file(recorded, files)
        self.readers: list[Any] = []
        try:
            for name in names:
                self.readers.append(weights.Reader(verified.open(name)))
        except BaseException:
            self.close()
            raise
        self.where: dict[str, Any] = {}
        shard_of: dict[str, str] = {}
        for name, reader in zip(names, self.readers, strict=True):
            for key in reader.keys():
                if key in self.where:
                    raise CorruptArtifactError(reader.name, f"tensor {key[:80]!r} is also stored in {self.where[key].name}")
                self.where[key] = reader
                shard_of[key] = name
        self.extra = _file_extra(self.readers[0], set(self.where))
        aliases = self.extra.get("aliases", {})
        missing = [key for key in self.extra.get("order", []) if key not in self.where and key not in aliases]
        if missing:  # e.g. a record that leaves out a shard
            problem = f"__metadata__[{META_KEY!r}] names {len(missing)} tensors no file of the version holds ({_brief(missing, 3)})"
            raise CorruptArtifactError(self.readers[0].name, problem)
        if index is not None:
            _check_index(verified, index, shard_of)

    def keys(self) -> list[str]:
        return [key for reader in self.readers for key in reader.keys()]

    def each(self, work) -> None:
        """``work(reader)`` for every file, several at once (the largest first, so that no thread is
        left with a big one at the end), each read to its end (and so verified)."""
        failed = threading.Event()

        def run(reader) -> None:
            if failed.is_set():
                return
            try:
                work(reader, failed)
                reader.finish()
            except BaseException:
                failed.set()
                raise

        if len(self.readers) == 1:
            run(self.readers[0])
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(min(len(self.readers), os.cpu_count() or 1)) as pool:
            largest_first = sorted(self.readers, key=lambda reader: -sum(map(reader.nbytes, reader.keys())))
            futures = [pool.submit(run, reader) for reader in largest_first]
        for future in futures:
            future.result()

    def close(self) -> None:
        for reader in self.readers:
            reader.close()

    def __enter__(self) -> _Weights:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_index(verified, index: str, shard_of: dict[str, str]) -> None:
    """The shard index must map every stored tensor to the shard that holds it, and nothing else:
    the loader reads the shards the record names, but Hugging Face tools reading a download follow
    the index (a tensor it maps elsewhere, or not at all, would be missing or another's)."""
    path = verified.path(index)
    if path.stat().st_size > MAX_INDEX:
        raise CorruptArtifactError(index, f"is {path.stat().st_size} bytes, over the {MAX_INDEX} byte limit for a shard index")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in items}) != len(items):
            raise CorruptArtifactError(index, "repeats a key (another reader could pick the other value)")
        return dict(items)

    try:
        doc = json.loads(path.read_bytes().decode("utf-8"), object_pairs_hook=pairs)
    except (UnicodeError, ValueError, RecursionError) as exc:
        if isinstance(exc, CorruptArtifactError):
            raise
        raise CorruptArtifactError(index, "is not UTF-8 JSON") from None
    weight_map = doc.get("weight_map") if isinstance(doc, dict) else None
    if not isinstance(weight_map, dict):
        raise CorruptArtifactError(index, "has no weight_map object")
    for tensor, shard in shard_of.items():
        if weight_map.get(tensor) != shard:
            raise CorruptArtifactError(index, f"maps tensor {tensor[:80]!r} to {str(weight_map.get(tensor))[:80]!r}, but {shard} holds it")
    unknown = [str(tensor) for tensor in weight_map if tensor not in shard_of]
    if unknown:
        raise CorruptArtifactError(index, f"maps {len(unknown)} tensors no shard holds ({_brief(unknown, 3)})")


def _file_extra(reader, stored: set[str]) -> dict[str, Any]:
    """This plugin's ``__metadata__`` entry: ``order`` (every state-dict name once) and ``aliases``
    (a shared tensor's other names -> its stored name). Absent from files other writers made."""
    raw = reader.metadata.get(META_KEY)
    if raw is None:
        return {}

    def bad(problem: str) -> CorruptArtifactError:
        return CorruptArtifactError(reader.name, f"__metadata__[{META_KEY!r}] {problem}")

    try:
        extra = json.loads(raw)
    except (ValueError, RecursionError):
        raise bad("is not JSON") from None
    if not isinstance(extra, dict):
        raise bad("is not a JSON object")
    order, aliases = extra.get("order", []), extra.get("aliases", {})
    if not isinstance(aliases, dict) or not all(isinstance(v, str) and v in stored for v in aliases.values()):
        raise bad("has aliases that do not name stored tensors")
    if stored & set(aliases):
        raise bad("has aliases that are also stored tensors")
    if not isinstance(order, list) or not all(isinstance(n, str) for n in order) or len(set(order)) != len(order):
        raise bad("has an order that is not a list of distinct names")
    return {"order": order, "aliases": aliases}


def _read_dict(stored: _Weights, device: Any, ordered: bool) -> dict[str, Any]:
    aliases: dict[str, str] = stored.extra.get("aliases", {})
    tensors: dict[str, Any] = {}

    def read(reader, failed) -> None:
        for name in reader.keys():
            if failed.is_set():
                return
            tensor = reader.read(name)
            tensors[name] = tensor.to(device) if device is not None else tensor

    stored.each(read)
    keys = stored.keys()
    order = [n for n in stored.extra.get("order", []) if n in tensors or n in aliases]
    order += [n for n in keys if n not in set(order)]
    out = OrderedDict() if ordered else {}
    for name in order:
        out[name] = tensors[name] if name in tensors else tensors[aliases[name]]
    return out


def _on_meta(module) -> bool:
    """Whether every parameter and buffer of ``module`` is on the meta device (none: ``False``).

    A module partly on meta cannot be loaded either way (copying into a meta tensor is a silent
    no-op in torch; assigning only some tensors leaves others unallocated): that is an error.
    """
    tensors = list(module.state_dict(keep_vars=True).items())
    meta = [name for name, t in tensors if t.is_meta]
    if meta and len(meta) != len(tensors):
        real = [name for name, t in tensors if not t.is_meta]
        raise UsageError(
            f"this {type(module).__qualname__} is partly on the meta device ({_brief(meta)}) and partly not"
            f" ({_brief(real)}): build it entirely under `with torch.device('meta'):` (the stored weights are then"
            " assigned, allocated once) or entirely on a real device"
        )
    return bool(meta)


def _assign_into(module, stored: _Weights, device: Any, strict: bool) -> None:
    """Assign the stored tensors to a meta skeleton (``load_state_dict(assign=True)``), on ``device``
    (CPU by default): each tensor is allocated once, by the read."""
    expected = module.state_dict(keep_vars=True)
    state = _read_dict(stored, device, ordered=False)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if strict and (missing or unexpected):
        raise UsageError(
            f"the stored weights do not match this {type(module).__qualname__}:"
            f" missing keys {_brief(missing)}, unexpected keys {_brief(unexpected)};"
            " pass strict=False to load the keys that match"
        )
    if missing:  # strict=False: what is not stored would stay on meta, unusable
        raise UsageError(f"strict=False cannot leave {_brief(missing)} of a meta skeleton unallocated: build the module on a real device")
    module.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False, assign=True)


def _load_into(module, stored: _Weights, strict: bool) -> None:
    """Load the files' tensors into ``module``, holding at most a bounded chunk of extra tensors per file.

    Tensors of plain modules (no ``_load_from_state_dict`` override, no state-dict hooks) that
    match in dtype and shape are read straight into the parameter's memory; the others go
    through ``module.load_state_dict(chunk, strict=False)`` a chunk at a time, so custom
    loading logic and dtype casts behave as with torch. Shards are read several at once.
    """
    import torch

    aliases: dict[str, str] = stored.extra.get("aliases", {})
    expected = module.state_dict(keep_vars=True)
    present = set(stored.where) | set(aliases)
    missing = sorted(set(expected) - present)
    unexpected = sorted(present - set(expected))
    if strict and (missing or unexpected):
        raise UsageError(
            f"the stored weights do not match this {type(module).__qualname__}:"
            f" missing keys {_brief(missing)}, unexpected keys {_brief(unexpected)};"
            " pass strict=False to load the keys that match"
        )
    names_for: dict[str, list[str]] = {}
    for alias, name in aliases.items():
        names_for.setdefault(name, []).append(alias)
    in_place = _in_place_targets(module, expected)
    filled: set[int] = set()  # tied parameters: read once
    lock = threading.Lock()

    def apply(chunk: dict[str, Any]) -> None:
        with lock, torch.no_grad():
            module.load_state_dict(chunk, strict=False)

    def load(reader, failed) -> None:
        chunk: dict[str, Any] = {}
        size = 0
        for name in reader.keys():
            if failed.is_set():
                return
            wanted = [n for n in [name, *names_for.get(name, [])] if n in expected]
            slow = []
            for n in wanted:
                target = in_place.get(n)
                if target is not None and reader.fits(name, target):
                    with lock:
                        first = target.data_ptr() not in filled
                        filled.add(target.data_ptr())
                    if first:
                        reader.readinto(name, target)
                else:
                    slow.append(n)
            if not slow:
                continue
            tensor = reader.read(name)
            for n in slow:
                chunk[n] = tensor
            size += reader.nbytes(name)
            del tensor
            if size >= LOAD_CHUNK:
                apply(chunk)
                chunk, size = {}, 0
        if chunk:
            apply(chunk)

    stored.each(load)


def _in_place_targets(module, expected: dict[str, Any]) -> dict[str, Any]:
    """State-dict entries that ``load_state_dict`` would simply ``copy_`` into: safe to fill in place."""
    import torch

    base = torch.nn.Module
    if type(module).load_state_dict is not base.load_state_dict:
        return {}
    owners = dict(module.named_modules(remove_duplicate=False))
    for m in owners.values():
        if m._load_state_dict_pre_hooks or m._load_state_dict_post_hooks or m._state_dict_hooks or m._state_dict_pre_hooks:
            return {}
    targets = {}
    for key, tensor in expected.items():
        prefix, _, leaf = key.rpartition(".")
        owner = owners.get(prefix)
        if owner is None or type(owner)._load_from_state_dict is not base._load_from_state_dict:
            continue
        held = owner._parameters.get(leaf)
        if held is None:
            held = owner._buffers.get(leaf)
        if held is tensor and isinstance(tensor, torch.Tensor):
            targets[key] = tensor
    return targets


def _brief(names: list[str], n: int = 10) -> str:
    if not names:
        return "none"
    shown = ", ".join(repr(x) for x in names[:n])
    return f"[{shown}{f', … {len(names) - n} more' if len(names) > n else ''}]"
