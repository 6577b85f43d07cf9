"""``modelstore diff``: what changed between two versions of a domain."""

from __future__ import annotations

import math
from typing import Any

import click

from ..display import flatten, human_size, restated, unset, value_text, value_texts
from ..fields import FIELDS
from ..protocol.records import CORE_KEYS
from .app import cli, common_options
from .browse import fetch_records
from .context import CommandLine, escape, pass_cmdline, plural

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


def diff_records(old: dict[str, Any], new: dict[str, Any], *, show_all: bool = False) -> dict[str, Any]:
    """What differs between two version records, each fact once.

    ``files`` compares stored files by sha256; ``sections`` maps each other record key (flavor,
    params, dependencies, git, runtime, each plugin's own key such as ``model``, tags) to its
    changed leaves. Unless ``show_all``, these are left out (and counted in ``hidden``):

    * changes under a path a record field restates (``model.hyperparameters`` and
      ``flavor.options.params``: the ``params`` section shows them);
    * a value added or removed that is unset (``null``, ``""``, empty: a library default), or a
      change from one unset value to another;
    * a change in plugin metadata that a change shown above already says: the same name with the
      same new value (the booster config's ``max_depth`` "4" after ``params.max_depth`` 4).
    """
    plugin_keys = sorted((old.keys() | new.keys()) - set(CORE_KEYS))
    sections: dict[str, list[dict[str, Any]]] = {}
    said: set[tuple[str, str]] = set()  # (name, new value as text) of the changes kept so far
    hidden = 0
    for section in (*LEADING, *plugin_keys, *TRAILING):
        changes = diff_values(section, old.get(section), new.get(section))
        if not show_all:
            kept = [c for c in changes if not _left_out(c, section in plugin_keys, said)]
            hidden += len(changes) - len(kept)
            changes = kept
        if changes:
            sections[section] = changes
    return {
        "domain": new["domain"],
        "from": old["version"],
        "to": new["version"],
        "files": diff_files(old["files"], new["files"]),
        "sections": sections,
        "hidden": hidden,
    }


def _left_out(change: dict[str, Any], in_plugin_metadata: bool, said: set[tuple[str, str]]) -> bool:
    """Whether ``diff`` leaves ``change`` out without ``--all`` (:func:`diff_records`); a change kept is added to ``said``."""
    if restated(change["key"]) or all(unset(change.get(side)) for side in ("old", "new")):
        return True
    fact = (change["key"].rsplit(".", 1)[-1], _fact_text(change.get("new", change.get("old"))))
    if in_plugin_metadata and fact in said:
        return True
    said.add(fact)
    return False


def _fact_text(value: Any) -> str:
    """A value as :func:`_left_out` compares facts: a number written as text (a booster's config
    holds ``"0.100000001"``, float32 as text) as the number it reads as (``0.1``)."""
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        return value_text(number) if math.isfinite(number) else value
    return value_text(value, "null")


def change_texts(change: dict[str, Any]) -> tuple[str, str]:
    """The old and new values of a change as text (``""`` for the side that has none)."""
    old, new = value_texts([change.get("old"), change.get("new")], "null")
    return (old if "old" in change else "", new if "new" in change else "")


@cli.command()
@click.argument("domain")
@click.argument("v1", type=click.IntRange(min=1))
@click.argument("v2", type=click.IntRange(min=1))
@click.option("--all", "show_all", is_flag=True, help="Also the changes left out: unset (null) values, facts restated in the record.")
@common_options
@pass_cmdline
def diff(cmdline: CommandLine, domain: str, v1: int, v2: int, show_all: bool) -> None:
    """What changed from version V1 to V2 of DOMAIN, each fact once.

    Files (added, removed, changed by sha256), flavor, metrics, params, dependencies, git commit,
    runtime, plugin metadata and tags. Left out unless --all: values added or removed that are
    unset (null: a library default), and the places a record restates the params (the flavor's
    hyperparameters, the settings kept to rebuild the model, a booster's config saying the same).

    \b
    Piped columns: change (added/removed/changed), section, key, old, new
    """
    store = cmdline.store(existing=True)
    versions = [store.resolve(domain, v1), store.resolve(domain, v2)]
    records = fetch_records(store, versions)
    if len(records) != 2:  # one was deleted between resolve and fetch: report which
        for v in versions:
            v.metadata  # noqa: B018 - raises VersionNotFoundError
    result = diff_records(*records, show_all=show_all)
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
                old, new = change_texts(c)
                rows.append([c["change"], section, c["key"], old, new])
        cmdline.emit_rows(rows)
        note_hidden(cmdline, result["hidden"])
        return

    console = cmdline.console
    console.print(f"[bold]{escape(domain)}[/]: version {v1} → {v2}")
    if not (files["added"] or files["removed"] or files["changed"] or result["sections"]):
        console.print("[dim]no differences[/]")
        note_hidden(cmdline, result["hidden"])
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
            old, new = change_texts(c)
            if c["change"] == "added":
                console.print(f"  [green]+ {escape(key)}[/] = {escape(new)}")
            elif c["change"] == "removed":
                console.print(f"  [red]- {escape(key)}[/] = {escape(old)}")
            else:
                console.print(f"  [yellow]~ {escape(key)}[/]: {escape(old)} → {escape(new)}")
    note_hidden(cmdline, result["hidden"])


def note_hidden(cmdline: CommandLine, hidden: int) -> None:
    if hidden:
        cmdline.note(f"[dim]{plural(hidden, 'change')} of unset values or restated facts not shown (--all shows them)[/]")
