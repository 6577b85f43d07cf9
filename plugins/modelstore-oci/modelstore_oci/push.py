"""Pushing a version to a repository: the twin of :mod:`.pull`.

1. **layers**: one deterministic tar per file (:mod:`.layers`), and one holding the version record;
2. **digests**: each layer's digest, remembered on this machine (it is a function of the file's
   path, size and sha256), else computed in one pass over the file that also verifies it;
3. **blobs**: each blob the repository lacks (``HEAD`` first) is uploaded, several at once, the
   file verified again as it is read unless proven unchanged since it was; a blob goes in one
   ``PUT`` or in ``PATCH`` chunks;
4. **manifest**: the ModelPack config and manifest, put under the tag once every blob is there
   (a push killed before leaves no tag, and its rerun uploads only the blobs still missing);
5. **signatures**: each signature document as a manifest whose ``subject`` is the version's
   (a referrer), listed under the ``sha256-<hex>`` tag too where the registry has no referrers API.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from modelstore_core.plugin_api import Outgoing

from . import artifact
from .layers import FileLayer, bytes_layer, layer_kind
from .reference import TAG, Reference
from .registry import BLOCK, MANIFEST, Registry


@dataclass
class Blob:
    digest: str
    size: int
    open: Callable[[], BinaryIO]


class LayerMemo:
    """Layer digests computed on this machine, by :meth:`FileLayer.memo_key`: one small file each."""

    def __init__(self, directory: Path):
        self.directory = directory

    def get(self, key: str) -> str | None:
        try:
            found = (self.directory / key).read_text().strip()
        except OSError:
            return None
        return found if artifact._DIGEST.match(found) else None

    def put(self, key: str, digest: str) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.directory / f".{key}.{os.getpid()}.tmp"
            tmp.write_text(digest)
            os.replace(tmp, self.directory / key)
        except OSError:
            pass  # a memo is an optimisation: the next push computes it again


def push_version(registry: Registry, ref: Reference, version: Outgoing, progress: Callable[[int, int], None] | None = None) -> str:
    """Push ``version`` to ``ref`` (tag: the reference's, else the version number); the manifest's digest."""
    record = version.record
    tag = ref.tag or str(record.version)
    if not TAG.match(tag):
        raise ValueError(f"not a tag: {tag!r}")
    memo = LayerMemo(version.cache_dir / "oci-layers")

    # 1-2. layers and their digests
    blobs: list[Blob] = []
    layers: list[dict] = []
    for entry in record.files:
        layer = FileLayer.of(entry.path, entry.size)
        key = layer.memo_key(entry.sha256)
        digest = memo.get(key)
        if digest is None:
            digest = _digest(layer.open(version.files.open(entry.path)))
            memo.put(key, digest)
        blobs.append(Blob(digest, layer.layer_size, lambda layer=layer, entry=entry: layer.open(version.files.open(entry.path))))
        kind = layer_kind(entry.path, entry.is_extra)
        annotations = artifact.file_annotations(entry.path, entry.size, untested=entry.is_extra)
        layers.append(artifact.descriptor(artifact.layer_media_type(kind), digest, layer.layer_size, annotations))
    record_layer = bytes_layer(artifact.RECORD_PATH, version.data)
    record_digest = _sha256(record_layer)
    blobs.append(Blob(record_digest, len(record_layer), lambda: io.BytesIO(record_layer)))
    layers.append(
        artifact.descriptor(
            artifact.layer_media_type("doc"),
            record_digest,
            len(record_layer),
            artifact.file_annotations(artifact.RECORD_PATH, len(version.data), untested=False),
        )
    )
    config = artifact.model_config(record, [layer["digest"] for layer in layers])
    config_digest = _sha256(config)
    blobs.append(Blob(config_digest, len(config), lambda: io.BytesIO(config)))

    # 3. the blobs the repository lacks
    _upload_missing(registry, blobs, progress)

    # 4. the manifest, under the tag: the commit point
    manifest = artifact.version_manifest(record, artifact.descriptor(artifact.CONFIG, config_digest, len(config)), layers, record_digest)
    digest = _sha256(manifest)
    registry.put_manifest(tag, manifest, MANIFEST, f"putting the manifest of {record.domain}:{record.version} as {ref.name}:{tag}")

    # 5. signatures, as referrers
    subject = artifact.descriptor(MANIFEST, digest, len(manifest), artifactType=artifact.ARTIFACT_TYPE)
    for data in version.signatures:
        attach_signature(registry, subject, data)
    return digest


def attach_signature(registry: Registry, subject: dict, data: bytes) -> None:
    """One signature document as a referrer of ``subject``."""
    keyid = str(json.loads(data).get("keyid", ""))
    document = artifact.descriptor(artifact.SIGNATURE_TYPE, _sha256(data), len(data))
    empty = artifact.empty_digest()
    _upload_missing(
        registry,
        [
            Blob(empty, len(artifact.EMPTY), lambda: io.BytesIO(artifact.EMPTY)),
            Blob(document["digest"], len(data), lambda: io.BytesIO(data)),
        ],
    )
    manifest = artifact.signature_manifest(subject, document, keyid)
    digest = _sha256(manifest)
    headers = registry.put_manifest(digest, manifest, MANIFEST, f"attaching the signature of {keyid} to {subject['digest']}")
    registry.add_referrer(
        subject["digest"],
        artifact.descriptor(
            MANIFEST, digest, len(manifest), {"dev.modelstore.signature.keyid": keyid}, artifactType=artifact.SIGNATURE_TYPE
        ),
        headers,
    )


def _upload_missing(registry: Registry, blobs: list[Blob], progress: Callable[[int, int], None] | None = None) -> None:
    unique = list({blob.digest: blob for blob in blobs}.values())
    with ThreadPoolExecutor(min(registry.parallel, len(unique))) as pool:
        present = list(pool.map(lambda blob: registry.has_blob(blob.digest), unique))
        missing = [blob for blob, there in zip(unique, present, strict=True) if not there]
        total = sum(blob.size for blob in missing)
        done, lock = [0], threading.Lock()

        def advance(n: int) -> None:
            with lock:
                done[0] = min(total, done[0] + n)
                progress(done[0], total)

        def counted(blob: Blob) -> Callable[[], BinaryIO]:
            return blob.open if progress is None else lambda: _Counting(blob.open(), advance)

        list(pool.map(lambda blob: registry.upload_blob(blob.digest, blob.size, counted(blob)), missing))


def _digest(stream: BinaryIO) -> str:
    """The sha256 digest of a stream, read to its end (and closed)."""
    digest = hashlib.sha256()
    buffer = bytearray(4 * BLOCK)
    with stream:
        while n := stream.readinto(buffer):
            digest.update(memoryview(buffer)[:n])
    return "sha256:" + digest.hexdigest()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Counting:
    def __init__(self, stream: BinaryIO, advance: Callable[[int], object]):
        self._stream, self._advance = stream, advance

    def read(self, n: int = -1) -> bytes:
        data = self._stream.read(n)
        self._advance(len(data))
        return data

    def close(self) -> None:
        self._stream.close()
