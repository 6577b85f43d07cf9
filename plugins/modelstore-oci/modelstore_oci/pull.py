"""Pulling an artifact from a repository: the twin of :mod:`.push`.

1. **layers**: the manifest, fetched by tag or digest, its bytes checked against the digest asked
   for (or the one the registry states), its shape checked (:func:`~.artifact.parse_manifest`);
2. **digests**: the config, checked against the manifest's layers (ModelPack DiffIDs);
3. **blobs**: each layer streamed into the scratch directory, several at once: its bytes hashed
   against the manifest's digest and size as they come, each file in it hashed as it is written
   (the core then checks the files against the version record);
4. **manifest**: the version record, from its layer; without one (another tool's artifact), the
   files and what the manifest says of itself;
5. **signatures**: the referrers of the manifest that are signature documents, each manifest and
   blob checked against its digest (the core checks the signatures themselves).
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Incoming, IncomingFile, IntegrityError, ModelStoreError

from . import artifact
from .layers import Gunzip, VerifiedBlob, copy_out, read_tar
from .reference import Reference
from .registry import Registry

#: The largest version record or signature document read.
MAX_DOCUMENT = 16 << 20


def pull_artifact(registry: Registry, ref: Reference, scratch: Path, progress: Callable[[int, int], None] | None = None) -> Incoming:
    """Fetch the artifact ``ref`` names into ``scratch``, every byte checked against its digest."""
    # 1. the manifest
    reference = ref.digest or ref.tag or "latest"
    what = str(ref)
    data, _, stated = registry.get_manifest(reference, f"fetching the manifest of {what}")
    digest = _sha256(data)
    expected = ref.digest or stated
    if expected is not None and digest != expected:
        raise IntegrityError(f"the manifest of {what}", expected, digest, f"its bytes hash to {digest[:19]}…, not {expected[:19]}…")
    manifest = artifact.parse_manifest(data, what)

    # 2. the config
    config = _small_blob(registry, manifest.config, f"the config of {what}")
    modelpack = artifact.check_config(config, manifest, what)

    # 3. the layers
    record_layer = manifest.record_layer
    layers = [(i, layer) for i, layer in enumerate(manifest.layers) if layer is not record_layer]
    total = sum(layer.size for _, layer in layers)
    done, lock = [0], threading.Lock()

    def advance(n: int) -> None:
        if progress is not None:
            with lock:
                done[0] += n
                progress(done[0], total)

    def fetch(item: tuple[int, artifact.Descriptor]) -> list[IncomingFile]:
        return _fetch_layer(registry, item[1], item[0], scratch, what, record_layer is not None, advance)

    with ThreadPoolExecutor(max(1, min(registry.parallel, len(layers)))) as pool:
        files = [f for found in pool.map(fetch, layers) for f in found]
    names = [f.name for f in files]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise ModelStoreError(f"{what}: layers hold the same file twice ({', '.join(twice[:5])}); refused")
    pinned = ref.pinned(digest)

    # 4. the version record
    if record_layer is None:
        about: dict[str, Any] = {"manifest": digest, "artifactType": manifest.artifact_type, "annotations": manifest.annotations}
        if modelpack:
            about["model"] = {k: modelpack.get(k) for k in ("descriptor", "config") if isinstance(modelpack.get(k), dict)}
        return Incoming(pinned, files, metadata={"oci": about}, suggested_domain=ref.repository.rsplit("/", 1)[-1])
    record = _record(registry, record_layer, scratch, what)

    # 5. signatures
    return Incoming(pinned, files, record=record, signatures=_signatures(registry, digest, what))


def _fetch_layer(
    registry: Registry, layer: artifact.Descriptor, index: int, scratch: Path, what: str, ours: bool, advance: Callable[[int], None]
) -> list[IncomingFile]:
    encoding = artifact.encoding(layer.media_type)
    path = layer.annotations.get(artifact.FILEPATH) or layer.annotations.get(artifact.TITLE)
    where = f"layer {index} of {what}" + (f" ({path[:100]})" if path else "")
    if not encoding or (ours and encoding != "tar"):
        raise ModelStoreError(f"{where} is a {layer.media_type[:100]}, which this plugin does not read; refused")
    if encoding == "tar+zstd":
        raise ModelStoreError(f"{where} is compressed with zstd, which this plugin does not read yet; refused")
    answer = registry.open_blob(layer.digest)
    with answer:
        blob = VerifiedBlob(answer.raw, layer.digest, layer.size, where, advance)
        if encoding == "raw":
            if not path:
                raise ModelStoreError(f"{where} is a file without a name ({artifact.FILEPATH}); refused")
            target = scratch / f"{index}"
            sha256 = copy_out(blob, layer.size, target)
            found = [IncomingFile(path, target, layer.size, sha256)]
        else:
            stream = Gunzip(blob) if encoding == "tar+gzip" else blob
            found = [IncomingFile(m.name, m.path, m.size, m.sha256) for m in read_tar(stream, scratch, f"{index}-", where)]
        blob.finish()  # every byte of the layer, against the manifest's digest and size
    if ours and [f.name for f in found] != [path]:
        raise ModelStoreError(f"{where} holds {[f.name[:100] for f in found][:3]}, not the one file its annotation names; refused")
    return found


def _small_blob(registry: Registry, layer: artifact.Descriptor, what: str, limit: int = MAX_DOCUMENT) -> bytes:
    if layer.size > limit:
        raise ModelStoreError(f"{what} is {layer.size} bytes, more than {limit}; refused")
    answer = registry.open_blob(layer.digest)
    with answer:
        blob = VerifiedBlob(answer.raw, layer.digest, layer.size, what)
        data = blob.read(layer.size)
        blob.finish()
    return data


def _record(registry: Registry, layer: artifact.Descriptor, scratch: Path, what: str) -> bytes:
    if layer.size > MAX_DOCUMENT:
        raise ModelStoreError(f"the version record of {what} is {layer.size} bytes, more than {MAX_DOCUMENT}; refused")
    answer = registry.open_blob(layer.digest)
    where = f"the version record of {what}"
    with answer:
        blob = VerifiedBlob(answer.raw, layer.digest, layer.size, where)
        members = list(read_tar(blob, scratch, "record-", where))
        blob.finish()
    if [m.name for m in members] != [artifact.RECORD_PATH]:
        raise ModelStoreError(f"{where}: its layer holds {[m.name[:100] for m in members][:3]}, not {artifact.RECORD_PATH}; refused")
    data = members[0].path.read_bytes()
    members[0].path.unlink()
    return data


def _signatures(registry: Registry, subject: str, what: str) -> list[bytes]:
    """The signature documents attached to ``subject``; one whose manifest or blob does not check out is left out."""
    found = []
    for entry in registry.referrers(subject, artifact.SIGNATURE_TYPE):
        digest = entry.get("digest")
        try:
            if not isinstance(digest, str) or not artifact._DIGEST.match(digest):
                raise ModelStoreError("a referrer without a sha256 digest")
            data, _, _ = registry.get_manifest(digest, f"fetching a signature of {what}")
            if _sha256(data) != digest:
                raise IntegrityError(f"the signature manifest {digest}", digest, _sha256(data))
            manifest = artifact.parse_manifest(data, f"the signature manifest {digest}")
            documents = [layer for layer in manifest.layers if layer.media_type == artifact.SIGNATURE_TYPE]
            if manifest.artifact_type != artifact.SIGNATURE_TYPE or len(documents) != 1:
                raise ModelStoreError("a referrer that is not one signature document")
            document = _small_blob(registry, documents[0], f"the signature document {documents[0].digest}", 1 << 20)
            json.loads(document)
        except (ModelStoreError, ValueError) as exc:
            warnings.warn(f"a signature attached to {what} was left out: {exc}", RuntimeWarning, stacklevel=2)
            continue
        found.append(document)
    return found


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()
