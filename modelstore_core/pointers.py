"""Signed pointers: what ``latest`` and each state name, under a trust policy.

A version's signature says what the version is; it cannot say that the version is the one
``latest`` or ``production`` should name. Whoever can write the bucket can point a state at an
older signed version, or delete the newest records so that ``latest`` falls back to an old one.
So under a trust policy a pointer counts only when a trusted key vouches for it, as TUF's
snapshot and timestamp roles vouch for what a repository holds:

* **Statements.** A writer with a signing key signs each pointer it moves: an in-toto statement
  (:func:`~modelstore_core.signing.pointer_statement`) naming the domain, the pointer (``latest``
  or a state), the version with its record's creation time and file manifest, a *serial number*
  and when. It is stored beside the pointer it signs: under ``"signed"`` in ``latest.json`` (the
  *head*) and in each entry of ``states.json``; a signed removal of a state stays in
  ``states.json``'s ``"removed"``. An upload moves the head to its version (never back); a
  delete of the version the head names moves it to the newest version left; ``set_state``,
  ``remove_state`` and ``delete`` sign the states they set and remove; ``sign`` moves the head to
  the version it signs when that is newer.
* **Serials.** Each statement's serial is one past the statement it replaces (read from the store)
  and past the last one this machine signed or saw: it only grows, and ordering never rests on
  anyone's clock.
* **Readers** (:func:`trusted_latest`, :func:`trusted_state`) accept a pointer only when its
  statement is signed by a trusted key (one is enough, whatever ``require`` says: the version it
  names must still satisfy the policy), names this domain and pointer, agrees with the plain
  pointer beside it, and names the record the store holds under that number
  (:func:`check_record`); a head that names a version the store does not hold is refused (it was
  deleted without a signed delete). Each reader remembers the newest statement it accepted, per
  store URL and domain, in its per-user cache (:class:`~modelstore_core.cache.SeenPointers`), and
  refuses one with a lower serial, or another version under the same serial, as a rollback
  (:class:`~modelstore_core.errors.RollbackError`).

What this costs: ``latest`` under a policy is one read of ``latest.json`` (the hint and the head
come together) and no listing, one request fewer than without; a state is the same one read of
``states.json`` as without. Writers sign inside the writes they make anyway (no extra request;
``set_state`` reads the record instead of a ``stat``). A store without a policy reads and writes
exactly as before: unsigned writers keep the signed head as it is.

What a reader that has seen nothing (a new machine, a cleared cache) cannot tell: an older
statement put back whole (a state or head as it was, validly signed, with the records it
names). What it does detect: pointers edited or added without a trusted key, a head whose
version was deleted, statements moved to another domain, pointer or record. A reader that has
seen a statement also refuses any older one. Nothing here notices a version other than the
head's deleted (the head only names the newest one), nor a state removed without a signed
removal (the state is then not found: nothing loads).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import CorruptRecordError, DomainNotFoundError, RollbackError, StateNotFoundError, UntrustedPointerError, VersionNotFoundError
from .protocol import keys, limits, read
from .protocol.cas import read_document
from .protocol.records import LatestDocument, SignedPointer, StatesDocument, VersionRecord
from .storage import Storage

if TYPE_CHECKING:
    from .cache import SeenPointers
    from .signing import TrustPolicy


@dataclass(frozen=True)
class Pointer:
    """A pointer's statement whose signature held for a trusted key."""

    domain: str
    #: the state's name; ``None`` for latest
    state: str | None
    #: the version it names; ``None``: none (a domain left without versions by a signed delete)
    version: int | None
    serial: int
    keyid: str
    #: the named record's creation time and manifest digest, as signed
    created: str | None
    manifest: str | None

    @property
    def what(self) -> str:
        return describe(self.state)


def describe(state: str | None) -> str:
    """``latest`` or ``state 'NAME'``, as errors and reports name a pointer."""
    return "latest" if state is None else f"state {state!r}"


def _untrusted(
    policy: TrustPolicy, domain: str, state: str | None, version: int | None, problem: str, advice: str
) -> UntrustedPointerError:
    return UntrustedPointerError(domain, describe(state), version, sorted(policy.keys), problem, advice)


def _move_advice(domain: str, state: str | None) -> str:
    if state is None:
        return (
            f"A trusted signer vouches for the newest version with an upload, or with `modelstore sign {domain} VERSION`"
            " (which also moves latest to it); meanwhile load a version by number"
        )
    return (
        f"A trusted signer moves it with `modelstore state set {domain} VERSION {state}` (with its signing key);"
        " meanwhile load a version by number"
    )


def verify_pointer(signed: SignedPointer | None, domain: str, state: str | None, policy: TrustPolicy, plain: int | None = None) -> Pointer:
    """The statement of ``latest`` (``state`` None) or ``state`` of ``domain``, checked: signed by a
    trusted key, for this domain and pointer, naming ``plain`` (the unsigned pointer beside it,
    when there is one); :class:`UntrustedPointerError` otherwise."""
    from .signing import POINTER_PREDICATE, verify_envelope

    advice = _move_advice(domain, state)
    if signed is None:
        raise _untrusted(policy, domain, state, plain, "is not signed: no statement by a trusted key says which version it names", advice)
    public = policy.keys.get(signed.keyid)
    if public is None:
        raise _untrusted(policy, domain, state, plain, f"was last moved by key {signed.keyid}, which is not trusted here", advice)
    try:
        statement = verify_envelope(signed.envelope, public, f"statement of {describe(state)}")
    except ValueError as exc:
        raise _untrusted(policy, domain, state, plain, f"has a statement whose signature does not hold ({exc})", advice) from None
    claims = statement.get("predicate")
    expected = {"domain": domain, "pointer": "latest" if state is None else "state", "state": state}
    if statement.get("predicateType") != POINTER_PREDICATE or not isinstance(claims, dict):
        raise _untrusted(policy, domain, state, plain, "has a signed statement that is not a modelstore pointer", advice)
    if any(claims.get(k) != v for k, v in expected.items()):
        got = f"{claims.get('pointer')} {claims.get('state') or ''} of {claims.get('domain')!r}".replace("  ", " ")
        raise _untrusted(policy, domain, state, plain, f"carries a signed statement of another pointer ({got})", advice)
    version, serial, record = claims.get("version"), claims.get("serial"), claims.get("record")
    if type(serial) is not int or serial < 1 or (version is not None and (type(version) is not int or version < 1)):
        raise _untrusted(policy, domain, state, plain, "has a signed statement without a version and serial", advice)
    if version is not None and not isinstance(record, dict):
        raise _untrusted(policy, domain, state, plain, "has a signed statement that does not name the record", advice)
    if plain is not None and state is not None and plain != version:
        raise _untrusted(
            policy, domain, state, plain, f"points at version {plain}, but its signed statement names version {version}", advice
        )
    record = record or {}
    return Pointer(domain, state, version, serial, signed.keyid, record.get("created"), record.get("manifest"))


def check_not_rolled_back(pointer: Pointer, seen: SeenPointers | None, policy: TrustPolicy) -> None:
    """:class:`RollbackError` when this machine saw a newer statement of the pointer (a higher
    serial), or another version under the same serial."""
    known = seen.lookup(pointer.domain, pointer.state) if seen is not None else None
    if known is None:
        return
    serial, version, _ = known
    if pointer.serial < serial or (pointer.serial == serial and pointer.version != version):
        raise RollbackError(pointer.domain, pointer.what, pointer.version, pointer.serial, known, sorted(policy.keys))


def check_record(pointer: Pointer, record: VersionRecord, policy: TrustPolicy) -> None:
    """The record under the pointer's version number must be the one its statement names."""
    from .signing import manifest_digest

    if record.document.get("created") != pointer.created or manifest_digest(record) != pointer.manifest:
        raise _untrusted(
            policy,
            pointer.domain,
            pointer.state,
            pointer.version,
            f"is signed for another record than version {pointer.version} holds (its time or files differ: a number"
            " reused after the domain was deleted, or an edited record)",
            _move_advice(pointer.domain, pointer.state),
        )


def missing(pointer: Pointer, policy: TrustPolicy) -> UntrustedPointerError:
    """The error of a signed pointer whose version is not in the store."""
    return _untrusted(
        policy,
        pointer.domain,
        pointer.state,
        pointer.version,
        f"is signed (statement {pointer.serial}, key {pointer.keyid}) as version {pointer.version}, which is not in the"
        " store: it was deleted without a signed delete (by a writer without a signing key, or by someone editing the"
        f" bucket); `modelstore verify --signatures` lists what is missing",
        _move_advice(pointer.domain, pointer.state),
    )


# --- reading --------------------------------------------------------------------------------------


def trusted_latest(storage: Storage, domain: str, policy: TrustPolicy, seen: SeenPointers | None) -> Pointer:
    """The signed head of ``domain``, checked and not rolled back (one read; the record is the
    caller's to read and :func:`check_record`)."""
    key = keys.latest_key(domain)
    data = read_document(storage, key, limits.SMALL_BYTES, "a latest hint")[0]
    if data is None and not read.domain_exists(storage, domain):
        raise DomainNotFoundError(domain)
    document = LatestDocument.parse(data)
    try:
        head = document.head(key)
    except CorruptRecordError as exc:
        raise _untrusted(
            policy, domain, None, None, f"has an unreadable statement ({exc.field} {exc.problem})", _move_advice(domain, None)
        ) from None
    pointer = verify_pointer(head, domain, None, policy)
    check_not_rolled_back(pointer, seen, policy)
    if pointer.version is None:
        raise VersionNotFoundError(domain)
    return pointer


def _states_document(storage: Storage, domain: str) -> StatesDocument:
    key = keys.states_key(domain)
    return StatesDocument.parse(read_document(storage, key, limits.STATES_BYTES, "the states of a domain")[0], key)


def trusted_state(storage: Storage, domain: str, state: str, policy: TrustPolicy, seen: SeenPointers | None) -> Pointer:
    """The signed statement of ``state``, checked and not rolled back (one read)."""
    document = _states_document(storage, domain)
    entry = document.states.get(state)
    if entry is None:
        if not read.domain_exists(storage, domain):
            raise DomainNotFoundError(domain)
        raise StateNotFoundError(domain, state)
    pointer = verify_pointer(entry.pointer(keys.states_key(domain), state), domain, state, policy, plain=entry.version)
    check_not_rolled_back(pointer, seen, policy)
    return pointer


def trusted_states(storage: Storage, domain: str, policy: TrustPolicy, seen: SeenPointers | None, problems: list[str]) -> dict[str, int]:
    """The states of ``domain`` that a trusted key vouches for (not rolled back): ``{name: version}``.
    Each other state is left out, and why appended to ``problems``. One read."""
    key = keys.states_key(domain)
    out: dict[str, int] = {}
    for name, entry in sorted(_states_document(storage, domain).states.items()):
        try:
            pointer = verify_pointer(entry.pointer(key, name), domain, name, policy, plain=entry.version)
            check_not_rolled_back(pointer, seen, policy)
        except (UntrustedPointerError, CorruptRecordError) as exc:
            problems.append(
                f"{domain}: {exc}" if isinstance(exc, CorruptRecordError) else f"{domain}: {describe(name)} {exc.problem}; left out"
            )
            continue
        out[name] = entry.version
    return out


def remember(pointer: Pointer, seen: SeenPointers | None) -> None:
    if seen is not None:
        seen.remember(pointer.domain, pointer.state, pointer.serial, pointer.version)


# --- verify ---------------------------------------------------------------------------------------


def check_pointers(
    storage: Storage, domain: str, present: set[int], policy: TrustPolicy | None, seen: SeenPointers | None
) -> list[tuple[int | None, str, str]]:
    """What ``verify --signatures`` reports of the pointers of ``domain`` (``present``: its versions):
    ``(version, problem, detail)`` with problem ``untrusted-pointer`` (with a policy: not vouched
    for by a trusted key), ``bad-signature`` (without one: a statement that does not hold for the
    key it names), ``rolled-back`` (older than what this machine saw) or ``missing-version`` (a
    signed statement names a version the store does not hold)."""
    from .signing import TrustPolicy, load_public_key

    found: list[tuple[int | None, str, str]] = []
    try:
        latest_doc = LatestDocument.parse(read_document(storage, keys.latest_key(domain), limits.SMALL_BYTES, "a latest hint")[0])
        states_doc = _states_document(storage, domain)
    except CorruptRecordError:
        return found  # reported by verify's check of the states
    pointers: list[tuple[str | None, int | None, dict | None]] = [(None, None, latest_doc.signed)] if present or latest_doc.signed else []
    pointers += [(name, entry.version, entry.signed) for name, entry in sorted(states_doc.states.items())]
    for state, plain, signed_json in pointers:
        what = describe(state)
        try:
            signed = SignedPointer.parse(signed_json, keys.domain_prefix(domain), "") if signed_json is not None else None
        except CorruptRecordError as exc:
            found.append((plain, "untrusted-pointer" if policy else "bad-signature", f"{what}: {exc.problem}"))
            continue
        if signed is None and policy is None:
            continue  # unsigned pointers are how stores without a policy work
        checker = policy
        if checker is None:  # check it against the key it names: is it sound, whoever signed it
            try:
                checker = TrustPolicy([load_public_key(signed.public_key)])
            except Exception:  # noqa: BLE001 - UsageError, SigningUnavailableError: not a key
                found.append((plain, "bad-signature", f"{what}: its public key is not an ECDSA P-256 key"))
                continue
        try:
            pointer = verify_pointer(signed, domain, state, checker, plain=plain)
        except UntrustedPointerError as exc:
            found.append((plain, "untrusted-pointer" if policy else "bad-signature", f"{what} {exc.problem}"))
            continue
        try:
            check_not_rolled_back(pointer, seen, checker)
        except RollbackError as exc:
            found.append((pointer.version, "rolled-back", f"{what} {exc.problem}"))
        if pointer.version is not None and pointer.version not in present:
            found.append((pointer.version, "missing-version", f"{what} is signed as version {pointer.version}, which is not in the store"))
    return found
