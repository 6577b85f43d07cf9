"""A version's model card: a Hugging Face compatible ``README.md`` built from its record (``modelstore card``).

The YAML front matter holds what the Hub reads: ``license``, ``library_name``, ``tags``,
``base_model`` (the version's parents), ``datasets`` (the names of its data fingerprints) and
``model-index`` (its metrics); the body is for a reviewer: the card's own text (``upload(...,
card={...})``), the lineage, the data, metrics, params, the input signature, the environment, the
signatures and the files.

Everything in it comes from a record, which anyone with write access to the store can write: every
value is escaped where it lands. In the front matter each string is a double-quoted scalar with every
non-ASCII and control character escaped (JSON's string syntax, which YAML reads the same), so no value
can end the front matter, start a key or a document; in the body each value is text, never markup:
``&``, ``<`` and ``>`` become entities, and every character Markdown acts on is backslash-escaped (those
that only act at the start of a line, there): no heading, list, link, image, emphasis, table cell or HTML
can come out of a value; line breaks stay only in the card's own paragraphs, and table cells are one line.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from .display import human_size, value_text
from .protocol.records import VersionRecord

#: The ``library_name`` the Hub knows, by modelstore flavor; other flavors are named as they are.
LIBRARIES = {"sklearn": "sklearn", "transformers": "transformers", "keras": "keras", "onnx": "onnx", "torch": "pytorch"}
#: The task of the ``model-index`` when the card names none (``card={"task": ...}``).
DEFAULT_TASK = "other"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
#: What Markdown (CommonMark, GFM tables and strikethrough) acts on anywhere in a line: backslash-escaped.
_INLINE = re.compile(r"([\\`*_\[\]|~!])")
#: What it acts on at the start of a line (headings, lists, quotes, breaks, setext underlines): escaped there.
_ORDERED = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")


def text(value: Any) -> str:
    """``value`` as one line of Markdown text that renders as itself: control characters and line
    breaks as spaces, HTML's ``& < >`` as entities, every character Markdown acts on backslash-escaped."""
    line = _CONTROL.sub(" ", value if isinstance(value, str) else value_text(value)).strip()
    line = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    line = _INLINE.sub(r"\\\1", line)
    if line[:1] in ("#", "+", "=", "-"):
        return "\\" + line
    return _ORDERED.sub(r"\1\\\2", line) or " "


def paragraphs(value: str) -> str:
    """A card's free text (a description...) as escaped paragraphs: its lines kept, each escaped
    (:func:`text`), blank lines between paragraphs."""
    lines = [
        text(line) if line.strip() else ""
        for line in _CONTROL.sub(lambda m: "\n" if m.group() in "\n\r\u2028\u2029" else " ", value).split("\n")
    ]
    out, blank = [], True
    for line in lines:
        if not line:
            if not blank:
                out.append("")
            blank = True
        else:
            out.append(line)
            blank = False
    return "\n".join(out).strip()


def yaml_scalar(value: Any) -> str:
    """A YAML scalar that reads back as ``value``: strings double-quoted with every non-ASCII and
    control character escaped (JSON's string syntax is YAML's double-quoted style), finite numbers
    and booleans as JSON writes them, anything else as its text."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return json.dumps(value)
    return json.dumps(value if isinstance(value, str) else value_text(value), ensure_ascii=True)


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """Block YAML of ``value`` (dicts with our own keys, lists, scalars)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines += _yaml(item, indent + 2)
            else:
                lines.append(f"{pad}{key}: {yaml_scalar(item) if not isinstance(item, (dict, list)) else '[]'}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                inner = _yaml(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines.append(f"{pad}- {yaml_scalar(item)}")
    return lines


def _table(headers: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    headers = list(headers)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(text(cell) for cell in row) + " |" for row in rows]
    return lines


# --- the card --------------------------------------------------------------------------------------


def front_matter(record: VersionRecord) -> dict[str, Any]:
    """The metadata the Hub reads, from ``record``."""
    card = record.values.get("card") or {}
    flavor = record.flavor.name
    tags = ["modelstore", flavor, *(f"{name}={value_text(value)}" for name, value in sorted(record.tags.items()))]
    meta: dict[str, Any] = {}
    if card.get("license"):
        meta["license"] = card["license"]
    meta["library_name"] = LIBRARIES.get(flavor, flavor)
    meta["tags"] = tags
    parents = record.values.get("parents") or []
    if parents:
        meta["base_model"] = list(parents)
        meta["base_model_relation"] = "finetune" if len(parents) == 1 else "merge"
    if record.data:
        meta["datasets"] = sorted(record.data)
    if record.metrics:
        dataset = _evaluated_on(record)
        meta["model-index"] = [
            {
                "name": f"{record.domain}:{record.version}",
                "results": [
                    {
                        "task": {"type": card.get("task") or DEFAULT_TASK},
                        "dataset": {"name": dataset, "type": dataset},
                        "metrics": [{"type": name, "value": value, "name": name} for name, value in sorted(record.metrics.items())],
                    }
                ],
            }
        ]
    return meta


def _evaluated_on(record: VersionRecord) -> str:
    """The dataset the metrics were measured on, as well as a record can say: one named like an
    evaluation set, else the only one, else ``unspecified``."""
    names = sorted(record.data)
    for name in names:
        if name.lower() in ("test", "eval", "evaluation", "validation", "valid", "val", "holdout"):
            return name
    return names[0] if len(names) == 1 else "unspecified"


#: Sections of the card's own text, in the order the body shows them.
TEXT_SECTIONS = (("description", None), ("intended_use", "Intended use"), ("limitations", "Limitations"),
                 ("training", "Training"), ("evaluation", "Evaluation"), ("authors", "Authors"), ("citation", "Citation"))  # fmt: skip


def model_card(record: VersionRecord, states: Iterable[str] = (), signatures: Iterable[Any] = ()) -> str:
    """The ``README.md`` of ``record`` (``states``: the states naming it; ``signatures``:
    :class:`~modelstore_core.signing.SignatureInfo` values, when asked for)."""
    card = record.values.get("card") or {}
    doc = record.document
    lines = ["---", *_yaml(front_matter(record)), "---", "", f"# {text(record.domain)} version {record.version}", ""]
    summary = [
        f"{text(record.flavor.name)} model",
        f"created {text(doc.get('created', ''))}",
        f"{human_size(record.size)} in {len(record.files)} files",
    ]
    if states:
        summary.append("states: " + ", ".join(text(s) for s in states))
    lines += ["; ".join(summary) + ".", ""]
    for key, title in TEXT_SECTIONS:
        if card.get(key):
            if title:
                lines += [f"## {title}", ""]
            lines += [paragraphs(card[key]), ""]
    if card.get("license"):
        lines += ["## License", "", text(card["license"]), ""]
    parents = record.values.get("parents") or []
    git = doc.get("git") if isinstance(doc.get("git"), dict) else {}
    if parents or git.get("commit"):
        lines += ["## Lineage", ""]
        if parents:
            lines += ["Parents: " + ", ".join(text(p) for p in parents), ""]
        if git.get("commit"):
            lines += [f"Git commit {text(git['commit'])}" + (" (with uncommitted changes)" if git.get("dirty") else ""), ""]
    if record.data:
        lines += ["## Data", "", *_table(("dataset", "kind", "shape", "sha256"), (
            (name, d.get("kind"), "×".join(str(n) for n in d.get("shape") or []) or human_size(d.get("bytes")), d.get("sha256"))
            for name, d in sorted(record.data.items())
        )), ""]  # fmt: skip
    if record.metrics:
        lines += ["## Metrics", "", *_table(("metric", "value"), sorted(record.metrics.items())), ""]
    if record.params:
        lines += ["## Parameters", "", *_table(("param", "value"), sorted(record.params.items())), ""]
    signature = record.values.get("signature")
    if signature:
        inputs = signature.get("inputs", [])
        lines += [f"## Input signature ({text(signature.get('format'))})", "", *_table(("input", "dtype", "shape"), (
            (i.get("name") or "", i.get("dtype") or "", "" if i.get("shape") is None else i.get("shape")) for i in inputs[:200]
        )), ""]  # fmt: skip
        if len(inputs) > 200:
            lines += [f"… and {len(inputs) - 200} more inputs.", ""]
    runtime = doc.get("runtime") if isinstance(doc.get("runtime"), dict) else {}
    dependencies = doc.get("dependencies") if isinstance(doc.get("dependencies"), dict) else {}
    if runtime or dependencies:
        lines += ["## Environment", ""]
        if runtime:
            lines += [text(f"{runtime.get('implementation', 'Python')} {runtime.get('python', '')} on {runtime.get('platform', '')}"), ""]
        if dependencies:
            lines += _table(("distribution", "version"), sorted(dependencies.items())[:200]) + [""]
    signatures = list(signatures)
    if signatures:
        lines += ["## Signatures", "", *_table(("key id", "signed", "valid", "trusted"), (
            (s.keyid, s.signed or "", "yes" if s.valid else f"no: {s.problem}", "yes" if s.trusted else "no") for s in signatures
        )), ""]  # fmt: skip
    lines += ["## Files", "", *_table(("path", "size", "sha256"), ((f.path, human_size(f.size), f.sha256) for f in record.files)), ""]
    return "\n".join(lines)
