"""What a version records beside its files and flavor, each field declared once.

A :class:`RecordField` says everything the core does with one field: its name (the record's key,
the attribute of :class:`~modelstore_core.version.Version` and
:class:`~modelstore_core.protocol.records.VersionRecord`), what ``upload`` takes for it and how it
checks it (against the store too: a parent must exist), how a stored value is validated when a
record is read (the store is untrusted input), and which features use it: ``find`` (and the summary
it reads), signatures, ``compare``, ``diff``, ``info``, the web view and ``modelstore upload``'s
options. Those places read :data:`FIELDS`; none names a field itself.

Adding a field is a declaration here, and its keyword in ``ModelStore.upload``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import CorruptRecordError, InvalidNameError, UsageError
from .metrics import check_metrics, check_params, flavor_params, metric_problem, param_problem
from .names import check_name, check_tags
from .protocol.validate import Fields, check_sha256, kind_of


@dataclass(frozen=True)
class RecordField:
    """One field of a version record that the core acts on.

    :param name: the record's key, and the attribute of ``Version`` and ``VersionRecord``.
    :param doc: what it holds (the attribute's docstring).
    :param parse: ``parse(stored value, record key)``: the value validated, or
        :class:`CorruptRecordError` naming the key and the field (called only when the record holds it).
    :param empty: the value of a version that does not record it.
    :param argument: ``upload``'s keyword for it (``None``: not given to upload directly).
    :param check: ``check(argument value)``: what the record stores, or :class:`UsageError`.
    :param combine: ``combine(stored, draft)``: the value combined with what the flavor plugin
        recorded in the draft record (params over its hyperparameters...).
    :param resolve: ``resolve(storage, checked value)``: the value checked against the store the
        version goes to, before anything is written (a parent must exist there), or :class:`UsageError`.
    :param keep_empty: written into every record, even empty (else only when it holds something).
    :param search: ``find`` filters and sorts on ``NAME.KEY``, values of this kind (``"number"``,
        ``"scalar"``); such a field is kept in the domain summary that ``find`` reads.
    :param summarized: kept in the domain summary without being searched (``lineage`` finds a
        version's children there).
    :param signed: covered by the record envelope of a signature (its statement v2; the v1 statement of
        earlier releases covered a frozen list, :data:`~modelstore_core.signing.V1_CLAIMS`).
    :param compare: how ``compare`` shows it: ``"metric"`` (a row per key, the best marked),
        ``"pairs"`` (a row per key), ``"list"`` (one row), ``"datasets"`` (a row per dataset and property).
    :param show: how ``info`` and the web view show it: ``"inline"`` (one line), ``"pairs"`` (a
        name/value table), ``"versions"`` (one line of versions, linked), ``"signature"``,
        ``"datasets"``, ``"card"`` (sections of text).
    :param option: ``modelstore upload``'s option for it (``"--metric"``), whose values are
        ``NAME=VALUE`` pairs of kind ``search``'s (numbers, or JSON scalars), or text (``"text"``),
        or one item of a list each (``"items"``).
    :param option_help: that option's help.
    :param restated_at: dotted paths of a record that hold the same facts in another form (what the
        field is made from, a flavor's copy for rebuilding the model): ``diff``, ``info`` and the
        web view show the field, and those paths only when asked for everything (``--all``).
    """

    name: str
    doc: str
    parse: Callable[[Any, str], Any]
    empty: Callable[[], Any] = dict
    argument: str | None = None
    check: Callable[[Any], Any] | None = None
    combine: Callable[[Any, dict[str, Any]], Any] | None = None
    resolve: Callable[[Any, Any], Any] | None = None
    keep_empty: bool = False
    search: str | None = None
    summarized: bool = False
    signed: bool = False
    compare: str | None = None
    show: str | None = None
    option: str | None = None
    option_values: str | None = None
    option_help: str = ""
    restated_at: tuple[str, ...] = ()

    def read(self, doc: dict[str, Any], key: str) -> Any:
        """The field's validated value in the record document ``doc`` (its empty value when absent)."""
        value = doc.get(self.name)
        return self.empty() if value is None else self.parse(value, key)


# --- parsing what a record holds ------------------------------------------------------------------


def _object(value: Any, key: str, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CorruptRecordError(key, name, f"is a {kind_of(value)}, not an object")
    return value


def _entries(name: str, problem_of: Callable[[str, Any], str | None]) -> Callable[[Any, str], dict[str, Any]]:
    """A parser of an object of names to values that ``problem_of`` accepts (metrics, params)."""

    def parse(value: Any, key: str) -> dict[str, Any]:
        for item, entry in _object(value, key, name).items():
            if problem := problem_of(item, entry):
                raise CorruptRecordError(key, f"{name}.{item[:40]}", problem)
        return dict(value)

    return parse


def _parse_tags(value: Any, key: str) -> dict[str, Any]:
    for name, tag in _object(value, key, "tags").items():
        # Looser than at upload (another tool may have written newlines or escapes: what is printed
        # is escaped), but a tag is always a finite scalar.
        if isinstance(tag, (dict, list)) or tag is None:
            raise CorruptRecordError(key, f"tags.{name[:40]}", f"is a {kind_of(tag)}, not a string, number or boolean")
        if isinstance(tag, float) and not math.isfinite(tag):
            raise CorruptRecordError(key, f"tags.{name[:40]}", f"is {tag}, not a finite number")
    return dict(value)


def _parse_metrics(value: Any, key: str) -> dict[str, float]:
    return {name: float(number) for name, number in _entries("metrics", metric_problem)(value, key).items()}


#: Formats of an input signature: named columns of a table, or arrays/tensors (one, or a dict of them).
SIGNATURE_FORMATS = ("columns", "tensors")
#: Kinds of data a fingerprint describes.
DATASET_KINDS = ("dataframe", "array", "tensor", "file", "directory")
#: At most this many inputs (columns) in a signature, and this many characters in a name or dtype.
MAX_INPUTS = 100_000
MAX_TEXT = 1024


def _text(f: Fields, name: str, *, required: bool = False) -> str | None:
    value = f.get(name, str, required=required)
    if value is not None and len(value) > MAX_TEXT:
        raise f.fail(name, f"is {len(value)} characters long, more than {MAX_TEXT}")
    return value


def _shape(f: Fields, name: str) -> list[int | None] | None:
    """A shape: a list of sizes, each a non-negative integer or null (any size: the batch dimension)."""
    shape = f.get(name, list, required=False)
    if shape is not None and (len(shape) > 64 or not all(d is None or (type(d) is int and 0 <= d < 2**63) for d in shape)):
        raise f.fail(name, "is not a list of at most 64 sizes (non-negative integers or null)")
    return shape


def parse_signature(obj: Any, key: str) -> dict[str, Any]:
    """``signature``: ``{"format": "columns"|"tensors", "source": str, "inputs": [{name, dtype, shape,
    feature_type}...]}``: names, dtypes and shapes only, never data."""
    f = Fields(obj, key, "signature.")
    if f.get("format", str) not in SIGNATURE_FORMATS:
        raise f.fail("format", f"is {obj['format'][:40]!r}, not one of {', '.join(SIGNATURE_FORMATS)}")
    _text(f, "source", required=True)
    inputs = f.get("inputs", list)
    if len(inputs) > MAX_INPUTS:
        raise f.fail("inputs", f"lists {len(inputs)} inputs, more than {MAX_INPUTS}")
    for i, item in enumerate(inputs):
        entry = Fields(item, key, f"signature.inputs[{i}].")
        _text(entry, "name")
        _text(entry, "dtype")
        _text(entry, "feature_type")
        _shape(entry, "shape")
    return obj


def parse_dataset(name: Any, obj: Any, key: str) -> dict[str, Any]:
    """``data.<name>``: ``{"kind", "sha256", "shape", "columns", "dtypes", "bytes", "files"}`` (a fingerprint)."""
    try:
        check_name(name, "dataset name")
    except InvalidNameError as exc:
        raise CorruptRecordError(key, f"data.{str(name)[:40]}", str(exc)) from None
    f = Fields(obj, key, f"data.{name}.")
    if f.get("kind", str) not in DATASET_KINDS:
        raise f.fail("kind", f"is {obj['kind'][:40]!r}, not one of {', '.join(DATASET_KINDS)}")
    if not check_sha256(f.get("sha256", str)):
        raise f.fail("sha256", "is not 64 lower-case hex digits")
    _shape(f, "shape")
    _text(f, "name")
    for listed in ("columns", "dtypes"):
        values = f.get(listed, list, required=False) or []
        if len(values) > MAX_INPUTS or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in values):
            raise f.fail(listed, f"is not a list of at most {MAX_INPUTS} strings")
    for count in ("bytes", "files"):
        if count in obj and obj[count] is not None:
            f.integer(count, 0, 2**63 - 1)
    return obj


def _parse_data(value: Any, key: str) -> dict[str, dict[str, Any]]:
    return {name: parse_dataset(name, entry, key) for name, entry in _object(value, key, "data").items()}


# --- checking what upload is given ------------------------------------------------------------------


def _recordable(parse: Callable[[Any, str], Any], argument: str) -> Callable[[Any, str], Any]:
    """What ``parse`` accepts, else :class:`UsageError` (an example or a dataset beyond the record's limits)."""

    def check(value: Any) -> Any:
        try:
            return parse(value, argument)
        except CorruptRecordError as exc:
            raise UsageError(f"{exc.field} {exc.problem}: it cannot be recorded") from None

    return check


# fingerprint and input_signature are imported only when upload is given an example or data: reading
# a record, or an upload without them, does not build their classes.


def _check_signature(example: Any) -> dict[str, Any]:
    from .input_signature import signature_from_example

    return _recordable(parse_signature, "input_example")(signature_from_example(example))


def _check_data(data: Any) -> dict[str, Any]:
    from .fingerprint import fingerprints

    return _recordable(_parse_data, "data")(fingerprints(data))


def _combine_signature(given: dict[str, Any] | None, draft: dict[str, Any]) -> dict[str, Any] | None:
    """An example's signature, keeping what the flavor knew (categorical columns...); else the flavor's."""
    if not given:
        return draft.get("signature")
    from .input_signature import merge_signatures

    return merge_signatures(given, draft.get("signature"))


#: At most this many parents, and this many characters of a card's text (each section).
MAX_PARENTS = 64
MAX_CARD_TEXT = 100_000
#: The sections of a model card that ``upload`` takes (:mod:`modelstore_core.card`): free text, but
#: ``license`` and ``task``, which are identifiers (``apache-2.0``, ``tabular-classification``).
CARD_SECTIONS = ("description", "intended_use", "limitations", "license", "task", "training", "evaluation", "authors", "citation")
CARD_IDENTIFIERS = ("license", "task")
_IDENTIFIER = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}")


def parse_version_ref(ref: Any) -> tuple[str, int] | None:
    """``("churn", 3)`` of ``"churn:3"``, or ``None`` when it is not a valid ``DOMAIN:VERSION``."""
    if not isinstance(ref, str):
        return None
    domain, sep, number = ref.rpartition(":")
    if not sep or not number.isdigit() or len(number) > 10 or int(number) < 1 or number != str(int(number)):
        return None
    try:
        check_name(domain, "domain name")
    except InvalidNameError:
        return None
    return domain, int(number)


def _parse_parents(value: Any, key: str) -> list[str]:
    if not isinstance(value, list):
        raise CorruptRecordError(key, "parents", f"is a {kind_of(value)}, not a list")
    if len(value) > MAX_PARENTS:
        raise CorruptRecordError(key, "parents", f"names {len(value)} versions, more than {MAX_PARENTS}")
    for i, ref in enumerate(value):
        if parse_version_ref(ref) is None:
            raise CorruptRecordError(key, f"parents[{i}]", f"is {str(ref)[:60]!r}, not DOMAIN:VERSION")
    if len(set(value)) != len(value):
        raise CorruptRecordError(key, "parents", "names a version twice")
    return list(value)


def _check_parents(value: Any) -> list[str]:
    """``parents=``: versions as ``"DOMAIN:VERSION"``, ``"DOMAIN@STATE"`` or :class:`Version` values
    (one, or a list); states are resolved against the store (:func:`_resolve_parents`)."""
    items = [value] if isinstance(value, str) or hasattr(value, "domain") else value
    if not isinstance(items, (list, tuple)):
        raise UsageError(f"parents must be a list of versions ('churn:3', 'churn@production' or Version values), not {value!r:.80}")
    refs = []
    for item in items:
        if hasattr(item, "domain") and hasattr(item, "version"):
            item = f"{item.domain}:{item.version}"
        if isinstance(item, str) and "@" in item:
            domain, _, state = item.partition("@")
            check_name(domain, "domain name")
            check_name(state, "state name")
        elif parse_version_ref(item) is None:
            raise UsageError(
                f"parents: {str(item)[:80]!r} is not a version: give DOMAIN:VERSION (churn:3) or DOMAIN@STATE (churn@production)"
            )
        refs.append(item)
    if len(refs) > MAX_PARENTS:
        raise UsageError(f"parents names {len(refs)} versions, more than {MAX_PARENTS}")
    return refs


def _resolve_parents(storage: Any, refs: list[str]) -> list[str]:
    """Each parent as ``DOMAIN:VERSION`` of a version that exists in ``storage`` (a state resolved to
    the version it names now), once each; :class:`UsageError` naming one that does not."""
    from .errors import NotFoundError
    from .protocol import keys
    from .protocol.read import state_version

    resolved: list[str] = []
    for ref in refs:
        if "@" in ref:
            domain, _, state = ref.partition("@")
            try:
                ref = f"{domain}:{state_version(storage, domain, state)}"
            except NotFoundError as exc:
                raise UsageError(f"parents: {ref} names no version ({exc}); a parent must be a version of this store") from None
        domain, version = parse_version_ref(ref)  # type: ignore[misc]
        if storage.stat(keys.version_key(domain, version)) is None:
            raise UsageError(f"parents: {ref} is not a version of this store (a parent must exist: `modelstore ls {domain}` lists them)")
        if ref not in resolved:
            resolved.append(ref)
    return resolved


def _parse_card(value: Any, key: str) -> dict[str, str]:
    """``card``: section name -> text. Sections of later releases are kept (not shown); every value is
    text of at most :data:`MAX_CARD_TEXT` characters (printed escaped: :mod:`modelstore_core.card`)."""
    for name, text in _object(value, key, "card").items():
        if not isinstance(text, str):
            raise CorruptRecordError(key, f"card.{str(name)[:40]}", f"is a {kind_of(text)}, not text")
        if len(text) > MAX_CARD_TEXT:
            raise CorruptRecordError(key, f"card.{str(name)[:40]}", f"is {len(text)} characters long, more than {MAX_CARD_TEXT}")
        if name in CARD_IDENTIFIERS and not _IDENTIFIER.fullmatch(text):
            raise CorruptRecordError(key, f"card.{name}", f"is {text[:60]!r}, not an identifier such as apache-2.0")
    return dict(value)


def _check_card(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise UsageError(f"card must be a dict of sections ({', '.join(CARD_SECTIONS)}) to text, not {kind_of(value)}")
    unknown = sorted(str(k) for k in value if k not in CARD_SECTIONS)
    if unknown:
        raise UsageError(f"card: {unknown[0][:40]!r} is not a section of a model card; the sections are {', '.join(CARD_SECTIONS)}")
    card = {name: text for name, text in value.items() if text is not None}
    return _recordable(_parse_card, "card")(card)


# --- the fields --------------------------------------------------------------------------------------

TAGS = RecordField(
    "tags",
    "Labels recorded with the version: name -> string, finite number or boolean.",
    _parse_tags,
    argument="tags",
    check=check_tags,
    keep_empty=True,
    search="scalar",
    signed=True,
    compare="pairs",
    show="inline",
    option="--tag",
    option_values="text",
    option_help="Tag the version KEY=VALUE (repeatable).",
)
METRICS = RecordField(
    "metrics",
    "How good the version is, as recorded at upload: name -> finite number.",
    _parse_metrics,
    argument="metrics",
    check=check_metrics,
    search="number",
    signed=True,
    compare="metric",
    show="pairs",
    option="--metric",
    option_values="number",
    option_help="Record how good the version is, NAME=NUMBER (repeatable).",
)
PARAMS = RecordField(
    "params",
    "The settings that made it (by default the flavor's hyperparameters): name -> string, finite number, boolean or None.",
    _entries("params", param_problem),
    argument="params",
    check=check_params,
    combine=lambda given, draft: {**flavor_params(draft), **(given or {})},
    search="scalar",
    signed=True,
    compare="pairs",
    show="pairs",
    option="--param",
    option_values="scalar",
    option_help="Record a setting that made it, NAME=VALUE (repeatable): a number, true/false, null, else text.",
    # The flavor's hyperparameters it is made from, and the estimator's settings a flavor keeps
    # to rebuild it (jsonvalues.stored_params).
    restated_at=("model.hyperparameters", "flavor.options.params"),
)
SIGNATURE = RecordField(
    "signature",
    'What the model expects as input ({"format", "source", "inputs": [...]}), when it was recorded.',
    parse_signature,
    empty=lambda: None,
    argument="input_example",
    check=_check_signature,
    combine=_combine_signature,
    signed=True,
    show="signature",
)
DATA = RecordField(
    "data",
    'Fingerprints of the datasets recorded at upload: name -> {"kind", "shape", "dtypes", "sha256", ...}.',
    _parse_data,
    argument="data",
    check=_check_data,
    signed=True,
    compare="datasets",
    show="datasets",
)

PARENTS = RecordField(
    "parents",
    "The versions it was made from (\"DOMAIN:VERSION\": a fine-tune's base, a distilled model's teacher, a retrain's predecessor).",
    _parse_parents,
    empty=list,
    argument="parents",
    check=_check_parents,
    resolve=_resolve_parents,
    summarized=True,
    signed=True,
    compare="list",
    show="versions",
    option="--parent",
    option_values="items",
    option_help="A version it was made from, DOMAIN:VERSION or DOMAIN@STATE (repeatable); it must exist.",
)
CARD = RecordField(
    "card",
    "Its model card's text, by section (description, intended_use, limitations, license...): `modelstore card` writes the README.md.",
    _parse_card,
    argument="card",
    check=_check_card,
    signed=True,
    show="card",
    option="--card",
    option_values="text",
    option_help=f"A section of its model card, SECTION=TEXT (repeatable; sections: {', '.join(CARD_SECTIONS)}).",
)

#: Every field, in the order they are shown.
FIELDS: tuple[RecordField, ...] = (TAGS, METRICS, PARAMS, PARENTS, SIGNATURE, DATA, CARD)
BY_NAME = {f.name: f for f in FIELDS}


def recorded_fields(given: dict[str, Any]) -> dict[str, Any]:
    """``upload``'s field arguments (``{argument: value}``, ``None`` for not given), checked: ``{field
    name: value to record}`` (:class:`UsageError` before anything is written)."""
    return {f.name: f.check(given[f.argument]) for f in FIELDS if f.check and given.get(f.argument) is not None}


def resolved_fields(storage: Any, recorded: dict[str, Any]) -> dict[str, Any]:
    """``recorded`` with each field that is checked against the store so checked (:class:`UsageError`)."""
    return {name: (BY_NAME[name].resolve(storage, value) if BY_NAME[name].resolve else value) for name, value in recorded.items()}


def draft_fields(recorded: dict[str, Any], draft: dict[str, Any]) -> dict[str, Any]:
    """The fields of a draft record: what upload was given, combined with what the flavor plugin
    recorded; a field that holds nothing is left out unless it is kept when empty."""
    out = {}
    for f in FIELDS:
        value = recorded.get(f.name)
        if f.combine is not None:
            value = f.combine(value, draft)
        if value or (f.keep_empty and value is not None):
            out[f.name] = value
        elif f.keep_empty:
            out[f.name] = f.empty()
    return out
