"""``oci://`` references: push and pull versions as CNCF ModelPack artifacts (:mod:`.push`, :mod:`.pull`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import Incoming, Outgoing, Transport, UsageError

from .pull import pull_artifact
from .push import push_version
from .reference import Reference
from .registry import Registry

#: What ``push(..., **options)`` and ``pull(..., **options)`` take, and their defaults.
OPTIONS = {"plain_http": False, "timeout": 60.0, "chunk_size": None, "parallel": 4}


class OCITransport(Transport):
    """One repository of an OCI registry, as ``oci://HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]`` names it.

    :param plain_http: talk to the registry over ``http://`` (a registry on loopback); default ``https://``.
    :param timeout: seconds one request may wait for an answer.
    :param chunk_size: blobs larger than this go up in ``PATCH`` chunks of this size; by default each
        blob goes in one streamed ``PUT``, in chunks of 64 MiB only if the registry refuses it (413).
    :param parallel: blobs moved at once (default 4).
    """

    def __init__(self, ref: str, options: dict[str, Any]):
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise UsageError(f"oci:// takes the options {', '.join(sorted(OPTIONS))}, not {', '.join(unknown)}")
        settings = {**OPTIONS, **options}
        for name in ("chunk_size", "parallel"):
            value = settings[name]
            if name == "chunk_size" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise UsageError(f"{name} is a positive whole number, not {value!r}")
        self.ref = Reference.parse(ref)
        self.url = str(self.ref)
        self.registry = Registry(
            self.ref,
            plain_http=bool(settings["plain_http"]),
            timeout=float(settings["timeout"]),
            chunk_size=settings["chunk_size"],
            parallel=settings["parallel"],
        )

    def push(self, version: Outgoing, progress=None) -> str:
        if self.ref.digest is not None:
            raise UsageError(f"{self.url}: a push names a tag (or none: the version number), not a digest")
        return push_version(self.registry, self.ref, version, progress)

    def pull(self, scratch: Path, progress=None) -> Incoming:
        return pull_artifact(self.registry, self.ref, scratch, progress)

    def close(self) -> None:
        self.registry.close()
