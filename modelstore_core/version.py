"""The :class:`Version` handle returned by uploads and listings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .fields import FIELDS
from .flavor import Flavor
from .protocol.records import CORE_KEYS, FileEntry, VersionRecord

if TYPE_CHECKING:
    from .environment import Environment
    from .protocol.summary import SummaryEntry


class Version:
    """One immutable version of a model in a domain.

    Listings build it from a key alone; its record (``metadata`` and everything derived from it)
    is read on first access, so listing thousands of versions costs no request per version.
    """

    __slots__ = ("domain", "version", "bytes_written", "summary", "_record", "_fetch")

    def __init__(self, domain: str, version: int, record: VersionRecord | None = None, fetch: Callable[[], VersionRecord] | None = None):
        self.domain = domain
        self.version = version
        self._record = record
        self._fetch = fetch
        #: set on the Version an upload returns: artifact bytes new to the store (0 if all deduplicated)
        self.bytes_written: int | None = None
        #: set on each Version ``find`` returns: what the domain's summary holds of it (created,
        #: flavor, size, tags, metrics, params, git), read without its record
        self.summary: SummaryEntry | None = None

    @property
    def record(self) -> VersionRecord:
        """The validated version record (read from the store on first access)."""
        if self._record is None:
            assert self._fetch is not None
            self._record = self._fetch()
        return self._record

    @property
    def metadata(self) -> dict[str, Any]:
        """The version record as stored: flavor, files, runtime, dependencies, git, tags and plugin metadata."""
        return self.record.document

    @property
    def created(self) -> datetime:
        """When the version was committed (UTC), as its record says."""
        return self.record.created

    @property
    def flavor(self) -> Flavor:
        return self.record.flavor

    @property
    def parts(self) -> dict[str, Flavor]:
        """Of a version of several models (``upload(d, models={...})``): each part's flavor, by name,
        in upload order; ``{}`` for other versions."""
        return {part.name: part.flavor for part in self.record.parts}

    @property
    def files(self) -> tuple[FileEntry, ...]:
        return self.record.files

    @property
    def size(self) -> int:
        """Total bytes of the version's files."""
        return self.record.size

    @property
    def plugin_metadata(self) -> dict[str, Any]:
        """What plugins recorded beside the core's keys (``model``: the flavor's description...), as stored."""
        return {key: value for key, value in self.record.document.items() if key not in CORE_KEYS}

    @property
    def environment(self) -> Environment:
        """The environment it was stored in (``.requirements_txt()``: ``modelstore env``)."""
        from .environment import environment  # read on demand: an upload does not import it

        return environment(self.record)

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


for _field in FIELDS:  # v.tags, v.metrics, v.params...: one attribute per declared field, read from the record
    setattr(Version, _field.name, property(lambda self, name=_field.name: self.record.values[name], doc=_field.doc))
