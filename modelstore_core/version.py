"""The :class:`Version` handle returned by uploads and listings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any


class Version:
    """One immutable version of a model in a domain.

    ``domain``, ``version`` and ``created`` come from the listing; ``metadata`` (the full
    version record) is fetched on first access, so listing thousands of versions costs
    no request per version.
    """

    __slots__ = ("domain", "version", "bytes_written", "_created", "_metadata", "_fetch")

    def __init__(
        self,
        domain: str,
        version: int,
        created: datetime | None = None,
        metadata: dict[str, Any] | None = None,
        fetch: Callable[[], dict[str, Any]] | None = None,
    ):
        self.domain = domain
        self.version = version
        self._created = created
        self._metadata = metadata
        self._fetch = fetch
        #: set on the Version an upload returns: artifact bytes new to the store (0 if all deduplicated)
        self.bytes_written: int | None = None

    @property
    def metadata(self) -> dict[str, Any]:
        """The version record: flavor, files, runtime, dependencies, git, tags and plugin metadata."""
        if self._metadata is None:
            assert self._fetch is not None
            self._metadata = self._fetch()
        return self._metadata

    @property
    def created(self) -> datetime:
        """When the version was committed (UTC). From the record once it is loaded, else from the listing."""
        if self._metadata is not None or self._created is None:
            return datetime.fromisoformat(self.metadata["created"])
        return self._created

    @property
    def flavor(self) -> dict[str, Any]:
        return self.metadata["flavor"]

    @property
    def files(self) -> list[dict[str, Any]]:
        return self.metadata["files"]

    @property
    def tags(self) -> dict[str, str]:
        return self.metadata.get("tags", {})

    @property
    def size(self) -> int:
        """Total bytes of the version's files."""
        return sum(f["size"] for f in self.files)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return (self.domain, self.version) == (other.domain, other.version)

    def __hash__(self) -> int:
        return hash((self.domain, self.version))

    def __int__(self) -> int:
        return self.version

    def __repr__(self) -> str:
        return f"Version(domain={self.domain!r}, version={self.version})"
