"""Where everything lives in a store, as storage keys.

::

    objects/sha256/<2 hex>/<64 hex>          file contents, by sha256 (deduplicated, immutable)
    domains/<domain>/claims/<version>        version number taken (create-if-absent; never reused)
    domains/<domain>/versions/<version>.json the version record: the commit point of an upload
    domains/<domain>/latest.json             hint: {"version": n}, the newest committed version (compare-and-swap),
                                             and a signer's signed head: "signed" (see :mod:`modelstore_core.pointers`)
    domains/<domain>/states.json             {"states": {"production": {"version": 3, "updated": iso, "signed"?}},
                                             "removed"?: {state: signed removal}} (compare-and-swap)
    domains/<domain>/signatures/<version>/<keyid>.json
                                             one signer's signatures of a version (create-if-absent)
    domains/<domain>/summary/<first>.json    what ``find`` filters and sorts on, for versions <first> to
                                             <first>+999 (compare-and-swap; a cache of the records, which
                                             stay the truth: see :mod:`.summary`)
    domains/<domain>/retention.json          the domain's retention policy, applied by ``gc`` (:mod:`modelstore_core.retention`)
    feed/<seq // 1000>/<seq>.json            one event of the change feed (create-if-absent, consecutive from 1,
                                             never rewritten: see :mod:`.feed`), 9 and 12 digits
    feed/head.json                           hint: a slot at or before the feed's end (compare-and-swap; may lag)
    uploads/<id>.json                        an upload in progress, or one that ended less than a grace ago:
                                             the objects it stores (re-written every heartbeat while it runs)
    gc/<id>.json                             a gc run in progress (re-written every heartbeat)
    probes/<id>                              a short-lived key proving the server's conditional writes

Version numbers are zero-padded to 10 digits so that key order is version order.
"""

from __future__ import annotations

OBJECTS = "objects/sha256/"
DOMAINS = "domains/"
UPLOADS = "uploads/"
GC_RUNS = "gc/"
FEED = "feed/"
#: The top-level prefixes the core writes below a store's root (backends may clean up only there).
TOP_LEVEL = ("objects/", DOMAINS, UPLOADS, GC_RUNS, "probes/", FEED)
VERSION_DIGITS = 10
#: The highest version number a key can hold.
MAX_VERSION = 10**VERSION_DIGITS - 1
#: Digits of an event's number in its key, and the highest number.
SEQ_DIGITS = 12
MAX_SEQ = 10**SEQ_DIGITS - 1
#: Events per folder of the feed (a local store lists from a key by skipping whole folders).
FEED_BLOCK = 1000
FEED_HEAD = f"{FEED}head.json"


def object_key(sha256: str) -> str:
    return f"{OBJECTS}{sha256[:2]}/{sha256}"


def domain_prefix(domain: str) -> str:
    return f"{DOMAINS}{domain}/"


def versions_prefix(domain: str) -> str:
    return f"{DOMAINS}{domain}/versions/"


def version_key(domain: str, version: int) -> str:
    return f"{versions_prefix(domain)}{version:0{VERSION_DIGITS}d}.json"


def claims_prefix(domain: str) -> str:
    return f"{DOMAINS}{domain}/claims/"


def claim_key(domain: str, version: int) -> str:
    return f"{claims_prefix(domain)}{version:0{VERSION_DIGITS}d}"


def latest_key(domain: str) -> str:
    return f"{DOMAINS}{domain}/latest.json"


def states_key(domain: str) -> str:
    return f"{DOMAINS}{domain}/states.json"


#: Versions per summary segment: one segment per page of a version listing.
SUMMARY_SPAN = 1000


def summary_prefix(domain: str) -> str:
    return f"{DOMAINS}{domain}/summary/"


def summary_first(version: int) -> int:
    """The first version of the summary segment that holds ``version``."""
    return (version - 1) // SUMMARY_SPAN * SUMMARY_SPAN + 1


def summary_key(domain: str, first: int) -> str:
    """The summary segment of versions ``first`` to ``first + SUMMARY_SPAN - 1``."""
    return f"{summary_prefix(domain)}{first:0{VERSION_DIGITS}d}.json"


def upload_key(upload_id: str) -> str:
    return f"{UPLOADS}{upload_id}.json"


def signatures_prefix(domain: str, version: int | None = None) -> str:
    """Every signature of ``domain`` (or of one version of it)."""
    if version is None:
        return f"{DOMAINS}{domain}/signatures/"
    return f"{DOMAINS}{domain}/signatures/{version:0{VERSION_DIGITS}d}/"


def signature_key(domain: str, version: int, keyid: str) -> str:
    return f"{signatures_prefix(domain, version)}{keyid}.json"


def signature_from_key(key: str) -> tuple[int, str] | None:
    """``(version, keyid)`` of a ``.../signatures/<n>/<keyid>.json`` key, or ``None`` for anything else."""
    parts = key.rsplit("/", 3)
    if len(parts) != 4 or parts[1] != "signatures":
        return None
    _, _, number, name = parts
    keyid, dot, ext = name.partition(".")
    if len(number) != VERSION_DIGITS or not number.isdigit() or int(number) < 1 or ext != "json" or not is_keyid(keyid):
        return None
    return int(number), keyid


#: Hex digits of a key id (the start of the sha256 of the public key's DER SubjectPublicKeyInfo).
KEYID_HEX = 32


def is_keyid(text: str) -> bool:
    return len(text) == KEYID_HEX and all(c in "0123456789abcdef" for c in text)


def version_from_key(key: str) -> int | None:
    """The version number of a ``.../versions/<n>.json`` key, or ``None`` for anything else."""
    name = key.rsplit("/", 1)[-1]
    stem, dot, ext = name.partition(".")
    if ext != "json" or len(stem) != VERSION_DIGITS or not stem.isdigit() or int(stem) < 1:
        return None
    return int(stem)


def gc_run_key(run_id: str) -> str:
    return f"{GC_RUNS}{run_id}.json"


def retention_key(domain: str) -> str:
    return f"{DOMAINS}{domain}/retention.json"


def event_key(seq: int) -> str:
    """Slot ``seq`` of the change feed; key order is number order."""
    return f"{FEED}{seq // FEED_BLOCK:0{SEQ_DIGITS - 3}d}/{seq:0{SEQ_DIGITS}d}.json"


def seq_from_key(key: str) -> int | None:
    """The number of a ``feed/<block>/<seq>.json`` key, or ``None`` for anything else."""
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != FEED:
        return None
    stem, dot, ext = parts[2].partition(".")
    if ext != "json" or len(stem) != SEQ_DIGITS or not stem.isdigit() or int(stem) < 1 or key != event_key(int(stem)):
        return None
    return int(stem)
