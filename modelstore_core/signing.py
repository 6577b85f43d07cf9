"""Signing versions and checking them against a trust policy.

A version is signed beside its record, in ``domains/<domain>/signatures/<n>/<keyid>.json`` (one
document per signer, see :class:`~modelstore_core.protocol.records.SignatureDocument`), holding
two signatures by the same ECDSA P-256 key:

* the OpenSSF model-signing bundle (``model_signing``'s sigstore bundle, DSSE over an in-toto
  statement of the files and their sha256): what ``model_signing verify key`` checks against a
  downloaded version directory;
* a DSSE envelope over an in-toto Statement v1 of the record fields that decide what runs and
  what it is (:func:`record_statement`): domain, version, the flavor (name, format, plugin, model
  class, safe, options), the digest of the file manifest (:func:`manifest_digest`), which binds
  the two together, and (statement v2) what ``find`` ranks by and the dependencies and environment
  markers it was stored with. The model-signing verifier compares its manifest with the files on
  disk, so these fields cannot go into its manifest.

A signer also signs, with the same key and the same DSSE envelope, the version's entry in the
domain summary (what ``find`` reads instead of the record: :meth:`Signer.sign_entry`) and the pointers
it moves (latest, states: :func:`pointer_statement`, read by :mod:`modelstore_core.pointers`).

A key id is the first :data:`~modelstore_core.protocol.keys.KEYID_HEX` hex digits of the sha256
of the public key's DER SubjectPublicKeyInfo.

Signing imports ``model_signing`` (about 0.7 s, once per process); checking imports only
``cryptography``. Both come with the ``signing`` extra and are imported only when used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .errors import (
    ConflictError,
    CorruptRecordError,
    KeyNotFoundError,
    SigningUnavailableError,
    UntrustedSignatureError,
    UsageError,
    VersionNotFoundError,
)
from .fields import FIELDS
from .protocol import commit, feed, keys, limits, summary
from .protocol.limits import read_capped
from .protocol.records import MAX_SERIAL, SignatureDocument, SignedPointer, VersionRecord, dumps, now_utc
from .storage import Storage

if TYPE_CHECKING:
    from .cache import SeenPointers
    from .protocol.summary import SummaryEntry

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
#: The predicate of the record envelope (modelstore's own) that this release signs.
RECORD_PREDICATE = "https://modelstore.dev/signature/version-record/v2"
#: The predicate earlier releases signed: still checked, for what it covers (:data:`V1_CLAIMS`).
RECORD_PREDICATE_V1 = "https://modelstore.dev/signature/version-record/v1"
#: The predicates of a version's summary entry and of a pointer (latest, a state).
ENTRY_PREDICATE = "https://modelstore.dev/signature/summary-entry/v1"
POINTER_PREDICATE = "https://modelstore.dev/signature/pointer/v1"
#: The predicate of model_signing's statement, and its bundle's media type.
MODEL_SIGNING_PREDICATE = "https://model_signing/signature/v1.0"
BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
#: ``require=`` of a trust policy.
REQUIRE = ("any", "all")
#: Summary-entry signatures a trust policy remembers having checked (about 200 bytes each).
VERIFIED_ENTRIES = 100_000


def _crypto():
    try:
        from cryptography import exceptions
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError as exc:
        raise SigningUnavailableError(exc) from None
    return exceptions, hashes, serialization, ec


# --- keys ------------------------------------------------------------------------------------------


def _key_bytes(key: Any, what: str) -> tuple[bytes, str]:
    """The PEM bytes of ``key`` (a path, or PEM text/bytes) and how to name it in an error (never its content)."""
    if isinstance(key, bytes):
        return key, f"the {what} given as bytes"
    if isinstance(key, str) and key.lstrip().startswith("-----BEGIN"):
        return key.encode(), f"the {what} given as PEM text"
    if isinstance(key, (str, os.PathLike)):
        path = Path(key).expanduser()
        try:
            return path.read_bytes(), str(path)
        except OSError as exc:
            raise UsageError(f"cannot read the {what} {path}: {exc.strerror or type(exc).__name__}") from None
    raise UsageError(f"a {what} is a path or PEM text, not a {type(key).__name__}")


def load_private_key(key: Any):
    """An ECDSA P-256 private key from a path, PEM text/bytes, or the key object itself."""
    _, _, serialization, ec = _crypto()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        private = key
        where = "the signing key given"
    else:
        data, where = _key_bytes(key, "signing key")
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise UsageError(f"{where} is encrypted; modelstore signs with unencrypted PEM keys (keep them mode 0600)") from None
        except ValueError:
            raise UsageError(f"{where} is not a PEM private key (`modelstore keys create NAME` makes one)") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise UsageError(f"{where} is not an ECDSA P-256 key (`modelstore keys create NAME` makes one)")
    return private


def load_public_key(key: Any):
    """An ECDSA P-256 public key from a path, PEM text/bytes, or the key object itself."""
    _, _, serialization, ec = _crypto()
    if isinstance(key, ec.EllipticCurvePublicKey):
        public, where = key, "the trusted key given"
    else:
        data, where = _key_bytes(key, "trusted key")
        if b"PRIVATE KEY-----" in data:
            raise UsageError(f"{where} is a private key: trust its public key instead (`modelstore keys ls` shows where it is)")
        try:
            public = serialization.load_pem_public_key(data)
        except ValueError:
            raise UsageError(f"{where} is not a PEM public key") from None
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise UsageError(f"{where} is not an ECDSA P-256 public key")
    return public


def public_pem(public_key) -> str:
    _, _, serialization, _ = _crypto()
    return public_key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def keyid(public_key) -> str:
    """The key id: the start of the sha256 of the DER SubjectPublicKeyInfo."""
    _, _, serialization, _ = _crypto()
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()[: keys.KEYID_HEX]


def new_private_key_pem() -> bytes:
    """A new ECDSA P-256 private key, PKCS#8 PEM, unencrypted."""
    _, _, serialization, ec = _crypto()
    private = ec.generate_private_key(ec.SECP256R1())
    return private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


# --- what is signed --------------------------------------------------------------------------------


def manifest_resources(record: VersionRecord) -> list[dict[str, str]]:
    """The files of a version as model_signing's resource descriptors, sorted by path."""
    return [{"algorithm": "sha256", "digest": f.sha256, "name": f.path} for f in sorted(record.files, key=lambda f: f.path)]


def manifest_digest(record: VersionRecord) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces) of :func:`manifest_resources`."""
    return hashlib.sha256(_canonical(manifest_resources(record))).hexdigest()


def record_statement(record: VersionRecord, predicate_type: str = RECORD_PREDICATE) -> dict[str, Any]:
    """The in-toto statement the record envelope signs (``predicate_type``: v2, or v1 as earlier
    releases signed it, to check their signatures)."""
    flavor = record.flavor
    digest = manifest_digest(record)
    v1 = predicate_type == RECORD_PREDICATE_V1
    predicate: dict[str, Any] = {
        "domain": record.domain,
        "version": record.version,
        "flavor": {
            "name": flavor.name,
            "format": flavor.format,
            "plugin": flavor.plugin,
            "model_class": flavor.model_class,
            "safe": flavor.safe,
            "options": flavor.options,
        },
        "manifest": {"sha256": digest, "files": len(record.files)}
        if v1
        else {"sha256": digest, "files": len(record.files), "size": record.size},
        # What find, compare and check_input act on: signed too, so an edited metric cannot make
        # a version the winner. Only when present, so the statement of a version without them
        # is the one earlier releases signed.
        **{name: record.values[name] for name in (V1_CLAIMS if v1 else SIGNED_CLAIMS) if record.values[name]},
    }
    if not v1:
        doc = record.document
        # The rest of what find ranks by (time, git), and what `modelstore env` turns into a
        # requirements file and load warns by: the dependencies and their environment markers.
        predicate.update(
            created=doc["created"],
            git=doc.get("git") or {},
            dependencies=doc.get("dependencies") or {},
            environment=doc.get("environment") or {},
        )
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{record.domain}/{record.version}", "digest": {"sha256": digest}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


#: Record fields beyond the files and flavor that the record envelope covers, by statement key.
SIGNED_CLAIMS = tuple(f.name for f in FIELDS if f.signed)
#: Those the v1 statement of earlier releases covered, frozen as they were signed.
V1_CLAIMS = ("metrics", "params", "signature", "data")
#: What a v1 signature does not cover, as ``verify --signatures`` says it.
V1_UNCOVERED = "dependencies, environment markers, tags, creation time, git and total size"


def entry_payload(domain: str, content: dict[str, Any]) -> bytes:
    """The statement a summary entry's signature is over: its ``content``
    (:meth:`~.protocol.summary.SummaryEntry.content`, what ``find`` filters and sorts by)."""
    return _canonical(
        {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": f"{domain}/{content['version']}", "digest": {"sha256": hashlib.sha256(_canonical(content)).hexdigest()}}],
            "predicateType": ENTRY_PREDICATE,
            "predicate": {"domain": domain, **content},
        }
    )


def pointer_statement(domain: str, state: str | None, record: VersionRecord | None, serial: int, when: str) -> dict[str, Any]:
    """The statement of a pointer: ``latest`` (``state`` None) or ``state`` of ``domain`` names the
    version of ``record`` (``None``: no version, a removed state or a domain left without any), as
    the ``serial``-th statement of that pointer, at ``when`` (the signer's clock, shown, never
    compared). The record is named by its creation time and file manifest too, so that a statement
    cannot be carried over to another record under the same number."""
    digest = manifest_digest(record) if record is not None else hashlib.sha256(b"").hexdigest()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{domain}/{'latest' if state is None else 'states/' + state}", "digest": {"sha256": digest}}],
        "predicateType": POINTER_PREDICATE,
        "predicate": {
            "domain": domain,
            "pointer": "latest" if state is None else "state",
            "state": state,
            "version": record.version if record is not None else None,
            "record": {"created": record.document["created"], "manifest": digest} if record is not None else None,
            "serial": serial,
            "signed": when,
        },
    }


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding (DSSE v1.0 protocol)."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type.encode()), payload_type.encode(), len(payload), payload)


# --- signing ---------------------------------------------------------------------------------------


def model_signing_bundle(record: VersionRecord, private_key) -> dict[str, Any]:
    """model_signing's bundle over the record's files, from the digests it holds (nothing is re-hashed)."""
    try:
        from model_signing import manifest
        from model_signing._hashing.hashing import Digest
        from model_signing._signing import sign_ec_key
        from model_signing._signing import signing as ms_signing
    except ImportError as exc:
        raise SigningUnavailableError(exc) from None

    serialization = manifest.SerializationType.from_args({"method": "files", "hash_type": "sha256", "allow_symlinks": False})
    items = [manifest.FileManifestItem(path=PurePosixPath(f.path), digest=Digest("sha256", bytes.fromhex(f.sha256))) for f in record.files]
    payload = ms_signing.Payload(manifest.Manifest(f"{record.domain}-{record.version}", items, serialization))
    # model_signing's elliptic-key signer reads its key from a file; the key is already in memory
    # (and must never be written anywhere), so the signer is given it directly.
    signer = sign_ec_key.Signer.__new__(sign_ec_key.Signer)
    signer._private_key = private_key
    return json.loads(signer.sign(payload).bundle.to_json())


def _sign_payload(payload: bytes, private_key) -> str:
    """The base64 ECDSA P-256 signature of DSSE's encoding of ``payload``."""
    _, hashes, _, ec = _crypto()
    return base64.b64encode(private_key.sign(pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))).decode()


def envelope(statement: dict[str, Any], private_key) -> dict[str, Any]:
    """A DSSE envelope of ``statement`` signed by ``private_key``."""
    payload = _canonical(statement)
    return {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": keyid(private_key.public_key()), "sig": _sign_payload(payload, private_key)}],
    }


def record_envelope(record: VersionRecord, private_key) -> dict[str, Any]:
    return envelope(record_statement(record), private_key)


def sign_record(record: VersionRecord, private_key) -> SignatureDocument:
    public = private_key.public_key()
    return SignatureDocument(
        domain=record.domain,
        version=record.version,
        keyid=keyid(public),
        public_key=public_pem(public),
        signed=now_utc(),
        bundle=model_signing_bundle(record, private_key),
        envelope=record_envelope(record, private_key),
    )


def write_signature(storage: Storage, record: VersionRecord, private_key) -> SignatureDocument:
    """Sign ``record`` and store the document (:func:`~.protocol.commit.put_signature`)."""
    doc = sign_record(record, private_key)
    public = private_key.public_key()

    # A document that holds for this record is kept (signing twice is a no-op), unless it was made
    # before statement v2 (it covers less); one that does not hold (left by a deleted domain whose
    # numbers were reused, or forged) can never be valid for it: replaced.
    def replaces(old: SignatureDocument | None) -> bool:
        return old is None or bool(check_signature(old, record, public)) or statement_type(old.envelope) != RECORD_PREDICATE

    if commit.put_signature(storage, doc, dumps(doc.to_json()), replaces):
        return doc
    return read_signature(storage, record.domain, record.version, doc.keyid)


def sign_version(storage: Storage, record: VersionRecord, signer: Signer, policy: TrustPolicy | None) -> SignatureInfo:
    """Sign the committed version ``record`` (``ModelStore.sign``), its summary entry, and the head
    when the version is newer than the one it names; :class:`VersionNotFoundError` if it was
    deleted meanwhile (its new signature is deleted too)."""
    doc = signer.sign_version(storage, record)
    if storage.stat(keys.version_key(record.domain, record.version)) is None:  # deleted meanwhile
        commit.delete_signatures(storage, record.domain, record.version)
        raise VersionNotFoundError(record.domain, record.version)
    summary.sign_entry(storage, record, signer)
    commit.advance_latest(storage, record.domain, record.version, signer=signer, record=record)
    feed.settle_uploads(storage, record.domain, upto=record.version)  # its uploaded event comes first
    feed.record(storage, "signed", record.domain, record.version)
    return SignatureInfo(doc.keyid, doc.signed, True, "", policy is not None and doc.keyid in policy.keys, json.dumps(doc.bundle))


class Signer:
    """A private key and everything it signs in a store: versions (:func:`write_signature`), their
    summary entries (:meth:`sign_entry`) and the pointers it moves (:meth:`sign_pointer`).

    A pointer's serial goes past the one it replaces and past the last this machine signed or
    saw for it (``seen``, the per-user memory of :class:`~modelstore_core.cache.SeenPointers`), so
    that a statement written after one that an attacker removed still reads as newer.
    """

    def __init__(self, private_key, seen: SeenPointers | None = None):
        self.private_key, self.seen = private_key, seen
        public = private_key.public_key()
        self.keyid, self.public_pem = keyid(public), public_pem(public)

    def sign_version(self, storage: Storage, record: VersionRecord) -> SignatureDocument:
        return write_signature(storage, record, self.private_key)

    def sign_entry(self, domain: str, entry: SummaryEntry) -> dict[str, str]:
        """``{"keyid", "sig"}``: this key's signature of a summary entry (:func:`entry_payload`)."""
        return {"keyid": self.keyid, "sig": _sign_payload(entry_payload(domain, entry.content()), self.private_key)}

    def sign_pointer(self, domain: str, state: str | None, record: VersionRecord | None, replaces: int) -> dict[str, Any]:
        """A :class:`~.protocol.records.SignedPointer` (as stored) of ``latest`` (``state`` None) or
        ``state`` naming ``record`` (``None``: nothing), with a serial past ``replaces`` and past
        what this machine remembers."""
        remembered = self.seen.lookup(domain, state) if self.seen is not None else None
        serial = max(replaces, remembered[0] if remembered else 0) + 1
        if serial > MAX_SERIAL:
            raise ConflictError(f"the serial of {'latest' if state is None else 'state ' + repr(state)} of {domain!r} is exhausted")
        statement = pointer_statement(domain, state, record, serial, now_utc())
        return SignedPointer(self.keyid, self.public_pem, envelope(statement, self.private_key)).to_json()

    @staticmethod
    def holds(pointer: SignedPointer | None) -> bool:
        """Whether ``pointer``'s signature holds for the key it names (sound, whoever signed it)."""
        if pointer is None:
            return False
        try:
            public = load_public_key(pointer.public_key)
            if keyid(public) != pointer.keyid:
                return False
            verify_envelope(pointer.envelope, public, "statement")
        except (ValueError, UsageError):
            return False
        return True

    def signed(self, domain: str, state: str | None, pointer: dict[str, Any]) -> None:
        """Remember a pointer this key wrote (once the write succeeded)."""
        if self.seen is not None:
            claims = SignedPointer(self.keyid, self.public_pem, pointer["envelope"]).claims()
            self.seen.remember(domain, state, claims["serial"], claims["version"])


# --- checking --------------------------------------------------------------------------------------


def read_signature(storage: Storage, domain: str, version: int, signer: str) -> SignatureDocument:
    """The validated document of ``signer`` (a key id); :class:`KeyNotFoundError` when absent."""
    key = keys.signature_key(domain, version, signer)
    return SignatureDocument.parse(read_capped(storage, key, limits.SMALL_BYTES, "a signature document")[0], key, domain, version, signer)


def list_signers(storage: Storage, domain: str, version: int) -> list[str]:
    """Key ids of the signature documents stored for a version (one listing; nothing verified)."""
    prefix = keys.signatures_prefix(domain, version)
    found = (keys.signature_from_key(info.key) for info in storage.list(prefix))
    return sorted(s[1] for s in found if s is not None and s[0] == version)


def signers_by_version(storage: Storage, domain: str) -> dict[int, list[str]]:
    """Key ids of the signature documents of every version of ``domain`` (one listing; nothing verified)."""
    out: dict[int, list[str]] = {}
    for info in storage.list(keys.signatures_prefix(domain)):
        found = keys.signature_from_key(info.key)
        if found is not None:
            out.setdefault(found[0], []).append(found[1])
    return out


def _b64(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ValueError(f"{what} is not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not base64") from None


def verify_envelope(envelope: Any, public_key, what: str) -> Any:
    """The decoded JSON payload (an in-toto statement) of a DSSE envelope whose signature holds for
    ``public_key``; :class:`ValueError` saying what is wrong otherwise."""
    exceptions, hashes, _, ec = _crypto()
    if not isinstance(envelope, dict) or envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ValueError(f"the {what} is not a DSSE envelope of an in-toto statement")
    payload = _b64(envelope.get("payload"), f"the {what}'s payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise ValueError(f"the {what} holds no signature")
    for entry in signatures[:8]:
        sig = _b64(entry.get("sig") if isinstance(entry, dict) else None, f"a signature of the {what}")
        try:
            public_key.verify(sig, pae(PAYLOAD_TYPE, payload), ec.ECDSA(hashes.SHA256()))
        except exceptions.InvalidSignature:
            continue
        try:
            statement = json.loads(payload)
        except (ValueError, RecursionError):
            raise ValueError(f"the {what}'s payload is not JSON") from None
        if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_TYPE:
            raise ValueError(f"the {what}'s payload is not an in-toto Statement v1")
        return statement
    raise ValueError(f"the {what}'s signature does not hold for key {keyid(public_key)}")


def check_signature(doc: SignatureDocument, record: VersionRecord, public_key) -> str:
    """What is wrong with ``doc`` as ``public_key``'s signature of ``record`` ("" when it holds)."""
    try:
        _check(doc, record, public_key)
    except ValueError as exc:
        return str(exc)
    return ""


def _check(doc: SignatureDocument, record: VersionRecord, public_key) -> None:
    statement = verify_envelope(doc.envelope, public_key, "record envelope")
    predicate_type = statement.get("predicateType")
    if predicate_type not in (RECORD_PREDICATE, RECORD_PREDICATE_V1):
        raise ValueError("the record envelope is not a modelstore version-record statement")
    expected = record_statement(record, predicate_type)
    if statement != expected:
        got, want = statement.get("predicate"), expected["predicate"]
        if isinstance(got, dict):
            for field in want:
                if got.get(field) != want.get(field):
                    raise ValueError(f"signed for another {'file list' if field == 'manifest' else field} than the record holds")
        raise ValueError("signed for another record")
    bundle = doc.bundle
    if bundle.get("mediaType") != BUNDLE_MEDIA_TYPE:
        raise ValueError("the model-signing bundle has an unknown media type")
    manifest = verify_envelope(bundle.get("dsseEnvelope"), public_key, "model-signing bundle")
    predicate = manifest.get("predicate")
    if manifest.get("predicateType") != MODEL_SIGNING_PREDICATE or not isinstance(predicate, dict):
        raise ValueError("the model-signing bundle is not a model_signing v1.0 statement")
    resources = predicate.get("resources")
    if not isinstance(resources, list) or not all(isinstance(r, dict) for r in resources):
        raise ValueError("the model-signing bundle lists no files")
    signed = sorted(((r.get("name"), r.get("algorithm"), r.get("digest")) for r in resources), key=str)
    held = sorted(((r["name"], r["algorithm"], r["digest"]) for r in manifest_resources(record)), key=str)
    if signed != held:
        raise ValueError("the model-signing bundle is signed for other files than the record holds")


def check_own_key(doc: SignatureDocument, record: VersionRecord) -> str:
    """What is wrong with ``doc`` checked against the public key it names ("" when it holds):
    says whether a signature is sound, not whether its signer is trusted."""
    try:
        public = load_public_key(doc.public_key)
    except UsageError:
        return "its public key is not an ECDSA P-256 PEM key"
    if keyid(public) != doc.keyid:
        return "its public key does not have its key id"
    return check_signature(doc, record, public)


@dataclass(frozen=True)
class SignatureInfo:
    """One signature document of a version, checked."""

    keyid: str
    #: when it was signed, as the document says (not itself signed)
    signed: str | None
    #: whether both signatures hold for the key the document names, over the current record
    valid: bool
    #: what is wrong ("" when valid)
    problem: str
    #: whether a key of the store's trust policy made it (and it holds for that key)
    trusted: bool
    #: the model-signing bundle as JSON, for ``model_signing verify key --signature FILE``
    bundle: str = ""
    #: what of the record a valid signature does not cover ("" when it covers everything this release
    #: signs; a signature made before statement v2: :data:`V1_UNCOVERED`)
    uncovered: str = ""


def describe_signatures(storage: Storage, record: VersionRecord, policy: TrustPolicy | None) -> list[SignatureInfo]:
    out = []
    for signer in list_signers(storage, record.domain, record.version):
        try:
            doc = read_signature(storage, record.domain, record.version, signer)
        except KeyNotFoundError:
            continue  # deleted meanwhile
        except CorruptRecordError as exc:
            out.append(SignatureInfo(signer, None, False, exc.problem if exc.field is None else f"{exc.field} {exc.problem}", False))
            continue
        problem = check_own_key(doc, record)
        trusted = policy is not None and signer in policy.keys and not check_signature(doc, record, policy.keys[signer])
        uncovered = V1_UNCOVERED if not problem and statement_type(doc.envelope) == RECORD_PREDICATE_V1 else ""
        out.append(SignatureInfo(signer, doc.signed, not problem, problem, trusted, json.dumps(doc.bundle), uncovered))
    return out


def statement_type(envelope: dict[str, Any]) -> str | None:
    """The predicate type an envelope's payload claims (its signature NOT checked: call it on a checked one)."""
    try:
        statement = json.loads(base64.b64decode(envelope.get("payload", ""), validate=True))
    except (ValueError, TypeError, RecursionError):
        return None
    return statement.get("predicateType") if isinstance(statement, dict) else None


# --- the trust policy ------------------------------------------------------------------------------


class TrustPolicy:
    """The public keys a reader trusts, and whether a version needs any or all of them."""

    def __init__(self, trusted: list[Any], require: str = "any"):
        if require not in REQUIRE:
            raise UsageError(f"require={require!r}: it is 'any' (one trusted signature suffices) or 'all' (every trusted key must sign)")
        if not trusted:
            raise UsageError("a trust policy needs at least one trusted public key")
        self.require = require
        self.keys = {}
        for key in trusted:
            public = load_public_key(key)
            self.keys[keyid(public)] = public
        #: (key id, signature) -> sha256 of the statement it was found to hold for (:meth:`entry_holds`)
        self._verified: dict[tuple[str, str], bytes] = {}

    def check(self, storage: Storage, record: VersionRecord) -> list[str]:
        """The trusted key ids whose signatures hold for ``record``; :class:`UntrustedSignatureError`
        unless they satisfy the policy. Reads one document per trusted key (a listing more on refusal)."""
        valid, problems = self._signers(record, lambda signer: read_signature(storage, record.domain, record.version, signer))
        if self._satisfied(valid):
            return valid
        raise self._refusal(record, valid, problems, list_signers(storage, record.domain, record.version))

    def check_documents(self, record: VersionRecord, documents: dict[str, SignatureDocument]) -> list[str]:
        """:meth:`check` for a version not in a store yet (a pull): its signature documents by key id."""

        def read(signer: str) -> SignatureDocument:
            if signer not in documents:
                raise KeyNotFoundError(signer)
            return documents[signer]

        valid, problems = self._signers(record, read)
        if self._satisfied(valid):
            return valid
        raise self._refusal(record, valid, problems, sorted(documents))

    def holds(self, storage: Storage, record: VersionRecord) -> bool:
        """Whether ``record`` is signed as the policy requires (what :meth:`check` checks, without the
        listing that explains a refusal)."""
        return self._satisfied(self._signers(record, lambda signer: read_signature(storage, record.domain, record.version, signer))[0])

    def _satisfied(self, valid: list[str]) -> bool:
        return bool(valid) and (self.require == "any" or len(valid) == len(self.keys))

    def _refusal(self, record: VersionRecord, valid: list[str], problems: dict[str, str], signers: list[str]) -> UntrustedSignatureError:
        found = {s: "" for s in signers}
        found.update({s: "valid" for s in valid})
        found.update(problems)
        return UntrustedSignatureError(record.domain, record.version, self.require, sorted(self.keys), found)

    def _signers(self, record: VersionRecord, read: Callable[[str], SignatureDocument]) -> tuple[list[str], dict[str, str]]:
        """The trusted key ids whose signatures hold (stopping at the first under ``any``), and what
        is wrong with the documents of the others; ``read(key id)`` gives a document or raises
        :class:`KeyNotFoundError`."""
        valid, problems = [], {}
        for signer, public in self.keys.items():
            try:
                doc = read(signer)
            except KeyNotFoundError:
                continue
            except CorruptRecordError as exc:
                problems[signer] = f"unreadable: {exc.field or 'document'} {exc.problem}"
                continue
            problem = check_signature(doc, record, public)
            if problem:
                problems[signer] = f"invalid: {problem}"
            else:
                valid.append(signer)
                if self.require == "any":
                    break
        return valid, problems

    def entry_holds(self, domain: str, entry: SummaryEntry) -> bool:
        """Whether ``entry``'s own signatures (:meth:`Signer.sign_entry`) satisfy the policy: no request,
        one ECDSA check per trusted key needed the first time this policy sees a signature, and
        after that only the statement rebuilt and hashed (a query repeated, the web view's pages)."""
        exceptions, hashes, _, ec = _crypto()
        payload = digest = None
        valid: set[str] = set()
        for signature in entry.signatures:
            signer, sig = signature["keyid"], signature["sig"]
            public = self.keys.get(signer)
            if public is None or signer in valid:
                continue
            if payload is None:
                payload = pae(PAYLOAD_TYPE, entry_payload(domain, entry.content()))
                digest = hashlib.sha256(payload).digest()
            if self._verified.get((signer, sig)) != digest:
                try:
                    public.verify(base64.b64decode(sig), payload, ec.ECDSA(hashes.SHA256()))
                except (exceptions.InvalidSignature, ValueError):
                    continue
                if len(self._verified) >= VERIFIED_ENTRIES:
                    self._verified.pop(next(iter(self._verified)))  # the oldest
                self._verified[(signer, sig)] = digest
            valid.add(signer)
            if self.require == "any":
                return True
        return len(valid) == len(self.keys)


def policy_from(trusted_keys: Any, require: str) -> TrustPolicy | None:
    """The policy of ``trusted_keys`` (``None``: ``$MODELSTORE_TRUSTED_KEYS``, os.pathsep-separated
    paths; empty: no policy)."""
    if require not in REQUIRE:
        raise UsageError(f"require={require!r}: it is 'any' (one trusted signature suffices) or 'all' (every trusted key must sign)")
    if trusted_keys is None:
        env = os.environ.get("MODELSTORE_TRUSTED_KEYS", "")
        trusted_keys = [p for p in env.split(os.pathsep) if p]
    elif isinstance(trusted_keys, (str, bytes, os.PathLike)):
        trusted_keys = [trusted_keys]
    trusted_keys = list(trusted_keys)
    return TrustPolicy(trusted_keys, require) if trusted_keys else None


# --- keys on this machine --------------------------------------------------------------------------


def keys_dir() -> Path:
    """Where ``modelstore keys create`` writes keys: ``<per-user config dir>/keys``."""
    import platformdirs

    return Path(platformdirs.user_config_dir("modelstore")) / "keys"


def create_key(name: str) -> tuple[Path, Path, str]:
    """Write a new private key (mode 0600) and its public key; ``(private path, public path, key id)``."""
    from .names import check_name

    check_name(name, "key name")
    directory = keys_dir()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    private_path, public_path = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    if private_path.exists() or public_path.exists():
        raise UsageError(f"a key named {name!r} exists already ({private_path}); choose another name")
    pem = new_private_key_pem()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = load_private_key(pem).public_key()
    public_path.write_text(public_pem(public))
    return private_path, public_path, keyid(public)


def resolve_key_path(key: str) -> str:
    """``key`` as given, or the private key of that name in :func:`keys_dir` when no such file exists."""
    if not os.path.exists(key) and "/" not in key and (keys_dir() / f"{key}.pem").is_file():
        return str(keys_dir() / f"{key}.pem")
    return key


def list_keys() -> list[dict[str, Any]]:
    """The keys in :func:`keys_dir`: name, key id, public and private key paths."""
    directory = keys_dir()
    out = []
    for path in sorted(directory.glob("*.pub.pem")) if directory.is_dir() else []:
        name = path.name[: -len(".pub.pem")]
        try:
            kid = keyid(load_public_key(path))
        except UsageError as exc:
            kid = f"unreadable: {exc}"
        private = directory / f"{name}.pem"
        out.append({"name": name, "keyid": kid, "public_key": str(path), "private_key": str(private) if private.exists() else None})
    return out
