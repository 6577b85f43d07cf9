"""``modelstore diff``: what changed between two versions of a domain."""

from __future__ import annotations

import json
import math
from typing import Any

import click

from ..display import flatten, human_size
from ..fields import FIELDS
from ..protocol.records import CORE_KEYS
from .app import cli, common_options
from .browse import fetch_records
from .context import CommandLine, escape, pass_cmdline

#: Sections in the order they are shown: the flavor, the record fields shown as tables, what the
#: version was made with; then plugin keys (``model``...), then the fields shown inline (tags).
LEADING = ("flavor", *(f.name for f in FIELDS if f.show != "inline"), "dependencies", "environment", "git", "runtime")
TRAILING = tuple(f.name for f in FIELDS if f.show == "inline")


def diff_files(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, Any]:
    """Files added, removed and changed (by sha256), by stored path."""
    a = {f["path"]: f for f in old}
    b = {f["path"]: f for f in new}
    return {
        "added": [b[p] for p in sorted(b.keys() - a.keys())],
        "removed": [a[p] for p in sorted(a.keys() - b.keys())],
        "changed": [
            {"path": p, "old": {k: a[p][k] for k in ("size", "sha256")}, "new": {k: b[p][k] for k in ("size", "sha256")}}
            for p in sorted(a.keys() & b.keys())
            if a[p]["sha256"] != b[p]["sha256"]
        ],
        "unchanged": sum(1 for p in a.keys() & b.keys() if a[p]["sha256"] == b[p]["sha256"]),
    }


def same(a: Any, b: Any) -> bool:
    """Equal values; NaN equals NaN (an unchanged ``missing=nan`` setting is no change)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def diff_values(section: str, old: Any, new: Any) -> list[dict[str, Any]]:
    """Leaf-by-leaf changes of one section, keyed ``section.sub.key``."""
    # Absent sections and empty dicts have no leaves: {} -> {"k": 1} is one key added.
    a = flatten(old, section, keep_empty=False) if old is not None else {}
    b = flatten(new, section, keep_empty=False) if new is not None else {}
    changes = []
    for key in sorted(a.keys() | b.keys()):
        if key not in a:
            changes.append({"key": key, "change": "added", "new": b[key]})
        elif key not in b:
            changes.append({"key": key, "change": "removed", "old": a[key]})
        elif not same(a[key], b[key]):
            changes.append({"key": key, "change": "changed", "old": a[key], "new": b[key]})
    return changes


def diff_records(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Everything that differs between two version records.

    ``files`` compares stored files by sha256; ``sections`` maps each other record key
    (flavor, dependencies, git, runtime, each plugin's own key such as ``model`` with its
    hyperparameters, tags) to its changed leaves.
    """
    plugin_keys = sorted((old.keys() | new.keys()) - set(CORE_KEYS))
    sections: dict[str, list[dict[str, Any]]] = {}
    for section in (*LEADING, *plugin_keys, *TRAILING):
        changes = diff_values(section, old.get(section), new.get(section))
        if changes:
            sections[section] = changes
    return {
        "domain": new["domain"],
        "from": old["version"],
        "to": new["version"],
        "files": diff_files(old["files"], new["files"]),
        "sections": sections,
    }


def show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@cli.command()
@click.argument("domain")
@click.argument("v1", type=click.IntRange(min=1))
@click.argument("v2", type=click.IntRange(min=1))
@common_options
@pass_cmdline
def diff(cmdline: CommandLine, domain: str, v1: int, v2: int) -> None:
    """What changed from version V1 to V2 of DOMAIN.

    Files (added, removed, changed by sha256), flavor, dependencies, git commit, runtime,
    plugin metadata (hyperparameters...) and tags.

    \b
    Piped columns: change (added/removed/changed), section, key, old, new
    """
    store = cmdline.store(existing=True)
    versions = [store.resolve(domain, v1), store.resolve(domain, v2)]
    records = fetch_records(store, versions)
    if len(records) != 2:  # one was deleted between resolve and fetch: report which
        for v in versions:
            v.metadata  # noqa: B018 - raises VersionNotFoundError
    result = diff_records(*records)
    files = result["files"]

    if cmdline.mode == "json":
        cmdline.emit_json(result)
        return
    if cmdline.mode == "plain":
        rows = [["added", "files", f["path"], "", f["sha256"]] for f in files["added"]]
        rows += [["removed", "files", f["path"], f["sha256"], ""] for f in files["removed"]]
        rows += [["changed", "files", f["path"], f["old"]["sha256"], f["new"]["sha256"]] for f in files["changed"]]
        for section, changes in result["sections"].items():
            for c in changes:
                old = show(c["old"]) if "old" in c else ""
                new = show(c["new"]) if "new" in c else ""
                rows.append([c["change"], section, c["key"], old, new])
        cmdline.emit_rows(rows)
        return

    console = cmdline.console
    console.print(f"[bold]{escape(domain)}[/]: version {v1} → {v2}")
    if not (files["added"] or files["removed"] or files["changed"] or result["sections"]):
        console.print("[dim]no differences[/]")
        return
    console.print(f"\n[bold]files[/] [dim]({files['unchanged']} unchanged)[/]")
    for f in files["added"]:
        console.print(f"  [green]+ {escape(f['path'])}[/]  {human_size(f['size'])}")
    for f in files["removed"]:
        console.print(f"  [red]- {escape(f['path'])}[/]  {human_size(f['size'])}")
    for f in files["changed"]:
        console.print(
            f"  [yellow]~ {escape(f['path'])}[/]  {human_size(f['old']['size'])} → {human_size(f['new']['size'])}"
            f"  [dim]sha256 {f['old']['sha256'][:12]}… → {f['new']['sha256'][:12]}…[/]"
        )
    for section, changes in result["sections"].items():
        plugin = "" if section in (*LEADING, "tags") else " [dim](plugin metadata)[/]"
        console.print(f"\n[bold]{escape(section)}[/]{plugin}")
        for c in changes:
            key = c["key"][len(section) + 1 :] or section
            if c["change"] == "added":
                console.print(f"  [green]+ {escape(key)}[/] = {escape(show(c['new']))}")
            elif c["change"] == "removed":
                console.print(f"  [red]- {escape(key)}[/] = {escape(show(c['old']))}")
            else:
                console.print(f"  [yellow]~ {escape(key)}[/]: {escape(show(c['old']))} → {escape(show(c['new']))}")
