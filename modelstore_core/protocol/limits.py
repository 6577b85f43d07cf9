"""How large each document of a store may be, and the bounded read that enforces it.

A store is untrusted input: anyone with write access to the bucket can inflate a record to
gigabytes of tags, and every reader (``info``, ``find``, the web view) would download, parse and
print it whole. Each document is read with :func:`read_capped`: the backend transfers at most the
limit plus one byte (a ranged request), and a document over its limit is a
:class:`~modelstore_core.errors.DocumentTooLargeError` (a ``CorruptRecordError``) naming its key,
size and limit. The limits leave room for the largest documents the write path accepts:

* :data:`RECORD_BYTES` (16 MiB): a version record. The largest field limits give 6.5 MB
  (measured: 1,000 metrics, 1,000 params and a 100,000-column input signature); the upload of a
  larger record is refused (:func:`check_record_size`). Upload markers list the same objects as
  a record, so they share its limit.
* :data:`SEGMENT_BYTES` (128 MiB): a summary segment, 1,000 entries of up to 128 KiB (an entry of
  1,000 metrics and 1,000 params measures 79 KB). A larger segment is not written: the summary
  lags for those versions and queries read their records instead.
* :data:`STATES_BYTES` (1 MiB): ``states.json``, a few hundred bytes per state.
* :data:`SMALL_BYTES` (64 KiB): the latest hint (17 bytes), claims (80), signature documents
  (under 1 KB) and the conditional-write probe's own keys.
"""

from __future__ import annotations

from ..errors import DocumentTooLargeError, UsageError
from ..storage import Storage, Token

MIB = 1 << 20
RECORD_BYTES = 16 * MIB
SEGMENT_BYTES = 128 * MIB
STATES_BYTES = MIB
SMALL_BYTES = 64 * 1024


def read_capped(storage: Storage, key: str, limit: int, what: str) -> tuple[bytes, Token]:
    """The document at ``key`` and its token, at most ``limit`` bytes of it transferred past which
    it is refused. ``what`` names the kind of document in the error.

    :raises KeyNotFoundError: when it is absent.
    :raises DocumentTooLargeError: when it is larger than ``limit`` (its size from one ``stat``).
    """
    data, token = storage.read(key, max_bytes=limit)
    if len(data) > limit:
        info = storage.stat(key)
        raise DocumentTooLargeError(key, what, info.size if info is not None else None, limit, token)
    return data, token


def check_record_size(data: bytes, what: str = "a version record") -> None:
    """Refuse to write a record no reader would read (:data:`RECORD_BYTES`)."""
    if len(data) > RECORD_BYTES:
        raise UsageError(
            f"{what} would be {len(data)} bytes, over the {RECORD_BYTES} byte limit readers accept:"
            " record fewer or shorter tags, params or signature columns (a large description belongs in an extra file)"
        )
