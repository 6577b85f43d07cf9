"""The artifact format: a CNCF ModelPack manifest (https://github.com/modelpack/model-spec).

An OCI image manifest with ``artifactType`` ``application/vnd.cncf.model.manifest.v1+json`` and a
ModelPack config (``application/vnd.cncf.model.config.v1+json``); one ``.tar`` layer per file of
the version, of the ModelPack kind its name suggests, with the file's path in
``org.cncf.model.filepath``; and one more layer, ``.modelstore/version.json``, holding the version
record exactly as stored (each file's size and sha256, flavor, metrics, params, tags...), named by
the manifest's ``dev.modelstore.record`` annotation. Signatures are separate manifests whose
``subject`` is this one (OCI referrers).

Everything read back is untrusted: :func:`parse_manifest` checks the manifest's shape (media types,
descriptors with sha256 digests and sizes) before a blob is fetched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from modelstore_core.plugin_api import ModelStoreError

from .registry import INDEX, MANIFEST

ARTIFACT_TYPE = "application/vnd.cncf.model.manifest.v1+json"
CONFIG = "application/vnd.cncf.model.config.v1+json"
FILEPATH = "org.cncf.model.filepath"
FILE_METADATA = "org.cncf.model.file.metadata+json"
UNTESTED = "org.cncf.model.file.mediatype.untested"
TITLE = "org.opencontainers.image.title"
#: The manifest annotation naming the layer that holds the version record (its digest).
RECORD_ANNOTATION = "dev.modelstore.record"
#: Where the version record lies in the mounted artifact: a name no file of a version can have.
RECORD_PATH = ".modelstore/version.json"
#: A signature document of a version, attached to its manifest as a referrer.
SIGNATURE_TYPE = "application/vnd.modelstore.signature.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
#: Media types of layers this reader takes: the ModelPack kinds, as tars (plain or gzip) or raw files,
#: and the OCI image layer types other tools use for plain files.
_MODELPACK_LAYER = re.compile(
    r"^application/vnd\.cncf\.model\.(weight|weight\.config|doc|code|dataset)\.v1\.(raw|tar|tar\+gzip|tar\+zstd)$"
)
_OCI_LAYER = re.compile(r"^application/vnd\.oci\.image\.layer\.v1\.(tar|tar\+gzip|tar\+zstd)$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
#: The most layers a manifest may list.
MAX_LAYERS = 10_000


def layer_media_type(kind: str) -> str:
    return f"application/vnd.cncf.model.{kind}.v1.tar"


def encoding(media_type: str) -> str:
    """How a layer's bytes hold its files: ``raw`` (the file itself), ``tar``, ``tar+gzip`` or ``tar+zstd``;
    ``""`` for a media type this reader does not take."""
    match = _MODELPACK_LAYER.match(media_type)
    if match:
        return match.group(2)
    match = _OCI_LAYER.match(media_type)
    if match:
        return match.group(1)
    return "raw" if media_type == "application/octet-stream" else ""


def canonical(obj: Any) -> bytes:
    """JSON as pushed: sorted keys, no spaces (the same version always makes the same manifest)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def descriptor(media_type: str, digest: str, size: int, annotations: dict[str, str] | None = None, **more: Any) -> dict[str, Any]:
    found = {"mediaType": media_type, "digest": digest, "size": size, **more}
    if annotations:
        found["annotations"] = annotations
    return found


def file_annotations(path: str, size: int, untested: bool) -> dict[str, str]:
    """A file layer's annotations: its path, its tar entry's attributes (ModelPack's file metadata)."""
    metadata = {"name": path, "mode": 0o644, "uid": 0, "gid": 0, "size": size, "mtime": "1970-01-01T00:00:00Z", "typeflag": 48}
    found = {FILEPATH: path, FILE_METADATA: canonical(metadata).decode()}
    if untested:
        found[UNTESTED] = "true"
    return found


def model_config(record: Any, layer_digests: list[str]) -> bytes:
    """The ModelPack config of a version: its name and version, when it was made, its format, and
    the layers' DiffIDs (uncompressed tars: their digests)."""
    described: dict[str, Any] = {"name": record.domain, "version": str(record.version), "createdAt": _rfc3339(record.created)}
    commit = (record.document.get("git") or {}).get("commit") if isinstance(record.document.get("git"), dict) else None
    if isinstance(commit, str) and commit:
        described["revision"] = commit
    config = {"format": record.flavor.format} if record.flavor.format and record.flavor.name != "files" else {}
    return canonical({"descriptor": described, "config": config, "modelfs": {"type": "layers", "diffIds": layer_digests}})


def _rfc3339(when: Any) -> str:
    return when.isoformat().replace("+00:00", "Z")


def version_manifest(record: Any, config: dict[str, Any], layers: list[dict[str, Any]], record_digest: str) -> bytes:
    annotations = {
        "org.opencontainers.image.title": record.domain,
        "org.opencontainers.image.version": str(record.version),
        "org.opencontainers.image.created": _rfc3339(record.created),
        RECORD_ANNOTATION: record_digest,
    }
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": ARTIFACT_TYPE,
            "config": config,
            "layers": layers,
            "annotations": annotations,
        }
    )


def signature_manifest(subject: dict[str, Any], document: dict[str, Any], keyid: str) -> bytes:
    """A signature document attached to a version's manifest: a referrer (OCI 1.1 ``subject``)."""
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "artifactType": SIGNATURE_TYPE,
            "config": descriptor(EMPTY_TYPE, empty_digest(), len(EMPTY)),
            "layers": [document],
            "subject": subject,
            "annotations": {"dev.modelstore.signature.keyid": keyid},
        }
    )


def empty_digest() -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(EMPTY).hexdigest()


# --- reading -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str]


@dataclass(frozen=True)
class Manifest:
    media_type: str
    artifact_type: str | None
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str]

    @property
    def record_layer(self) -> Descriptor | None:
        """The layer holding a modelstore version record (``None``: another tool's artifact)."""
        digest = self.annotations.get(RECORD_ANNOTATION)
        if digest is None:
            return None
        found = [layer for layer in self.layers if layer.digest == digest and layer.annotations.get(FILEPATH) == RECORD_PATH]
        if len(found) != 1:
            raise ModelStoreError(f"the manifest names its version record {digest}, but no single {RECORD_PATH} layer has it; refused")
        return found[0]


def _descriptor(obj: Any, where: str, limit: int) -> Descriptor:
    if not isinstance(obj, dict):
        raise ModelStoreError(f"{where} is not a descriptor; refused")
    media_type, digest, size = obj.get("mediaType"), obj.get("digest"), obj.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ModelStoreError(f"{where} has no media type; refused")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise ModelStoreError(f"{where} has no sha256 digest ({str(digest)[:80]!r}); only sha256 is pulled")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= limit:
        raise ModelStoreError(f"{where} has a size of {str(size)[:40]} bytes; refused")
    annotations = obj.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise ModelStoreError(f"{where} has annotations that are not text; refused")
    return Descriptor(media_type, digest, size, annotations)


def parse_manifest(data: bytes, what: str) -> Manifest:
    """An OCI image manifest, its shape checked (an index, or a container image, is named as one)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        raise ModelStoreError(f"{what}: the manifest is not JSON; refused") from None
    if not isinstance(doc, dict):
        raise ModelStoreError(f"{what}: the manifest is not a JSON object; refused")
    media_type = doc.get("mediaType", MANIFEST)
    if media_type == INDEX or "manifests" in doc:
        raise ModelStoreError(f"{what} is an image index (several manifests), not one model artifact: name one by its digest")
    if media_type != MANIFEST or doc.get("schemaVersion") != 2:
        raise ModelStoreError(
            f"{what} is a {str(media_type)[:80]} (schema {str(doc.get('schemaVersion'))[:10]}), not an OCI image manifest"
        )
    layers = doc.get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
        raise ModelStoreError(f"{what}: the manifest lists no layers, or more than {MAX_LAYERS}; refused")
    annotations = doc.get("annotations") or {}
    if not isinstance(annotations, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()):
        raise ModelStoreError(f"{what}: the manifest's annotations are not text; refused")
    artifact_type = doc.get("artifactType")
    return Manifest(
        media_type,
        artifact_type if isinstance(artifact_type, str) else None,
        _descriptor(doc.get("config"), f"{what}: the config", 4 << 20),
        [_descriptor(layer, f"{what}: layer {i}", 2**62) for i, layer in enumerate(layers)],
        annotations,
    )


def check_config(config: bytes, manifest: Manifest, what: str) -> dict[str, Any]:
    """A ModelPack config that agrees with the manifest: its DiffIDs are the digests of the layers
    that are not compressed (a ``.tar`` or ``.raw`` layer's content is its own DiffID)."""
    if manifest.config.media_type != CONFIG:
        return {}
    try:
        doc = json.loads(config)
    except (ValueError, RecursionError):
        raise ModelStoreError(f"{what}: the ModelPack config is not JSON; refused") from None
    modelfs = doc.get("modelfs") if isinstance(doc, dict) else None
    diff_ids = modelfs.get("diffIds") if isinstance(modelfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(manifest.layers):
        raise ModelStoreError(
            f"{what}: the ModelPack config lists {len(diff_ids or [])} layers, the manifest {len(manifest.layers)}; refused"
        )
    for i, (diff_id, layer) in enumerate(zip(diff_ids, manifest.layers, strict=True)):
        if encoding(layer.media_type) in ("raw", "tar") and diff_id != layer.digest:
            raise ModelStoreError(
                f"{what}: the ModelPack config's layer {i} is {str(diff_id)[:80]}, the manifest's {layer.digest}; refused"
            )
    return doc
