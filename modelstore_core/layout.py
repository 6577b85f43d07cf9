"""Where everything lives in a store, as storage keys.

::

    objects/sha256/<2 hex>/<64 hex>          file contents, by sha256 (deduplicated, immutable)
    domains/<domain>/claims/<version>        version number taken (create-if-absent; never reused)
    domains/<domain>/versions/<version>.json the version record: the commit point of an upload
    domains/<domain>/latest.json             hint: the newest committed version (compare-and-swap)
    domains/<domain>/states.json             {"production": 3, ...} (compare-and-swap)
    uploads/<id>.json                        an upload in progress: the objects it is writing

Version numbers are zero-padded to 10 digits so that key order is version order.
"""

from __future__ import annotations

OBJECTS = "objects/sha256/"
DOMAINS = "domains/"
UPLOADS = "uploads/"
VERSION_DIGITS = 10


def object_key(sha256: str) -> str:
    return f"{OBJECTS}{sha256[:2]}/{sha256}"


def domain_prefix(domain: str) -> str:
    return f"{DOMAINS}{domain}/"


def versions_prefix(domain: str) -> str:
    return f"{DOMAINS}{domain}/versions/"


def version_key(domain: str, version: int) -> str:
    return f"{versions_prefix(domain)}{version:0{VERSION_DIGITS}d}.json"


def claim_key(domain: str, version: int) -> str:
    return f"{DOMAINS}{domain}/claims/{version:0{VERSION_DIGITS}d}"


def latest_key(domain: str) -> str:
    return f"{DOMAINS}{domain}/latest.json"


def states_key(domain: str) -> str:
    return f"{DOMAINS}{domain}/states.json"


def upload_key(upload_id: str) -> str:
    return f"{UPLOADS}{upload_id}.json"


def version_from_key(key: str) -> int | None:
    """The version number of a ``.../versions/<n>.json`` key, or ``None`` for anything else."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.partition(".")
    if ext != "json" or len(stem) != VERSION_DIGITS or not stem.isdigit():
        return None
    return int(stem)
