"""After the upload: ``retain`` (retention), ``watch`` (the change feed), ``lineage`` and ``card``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..display import human_size
from .app import cli, common_options
from .browse import version_option
from .context import CLIError, CommandLine, escape, pass_cmdline, plural

# --- retain --------------------------------------------------------------------------------------


def print_retention(cmdline: CommandLine, report, applied: bool) -> None:
    """What a retention run deleted (or would delete), per domain, and the bytes ``gc`` then reclaims."""
    for d in report.domains:
        protected = "; ".join(f"{n}: {', '.join(why)}" for n, why in sorted(d.protected.items()))
        line = (
            f"[bold]{escape(d.domain)}[/] ({escape(d.policy.describe())}): keep {plural(len(d.kept), 'version')}, "
            + (f"{'deleted' if applied else 'delete'} {', '.join(map(str, sorted(d.deleted)))}" if d.deleted else "delete none")
            + (f" [dim](kept past the policy: {escape(protected)})[/]" if protected else "")
        )
        cmdline.note(line)
    for problem in report.problems:
        cmdline.note(f"[yellow]left alone[/]: {escape(problem)}")


@cli.command()
@click.argument("domain", required=False)
@click.option("--keep-last", type=click.IntRange(min=1), metavar="N", help="Keep the N newest versions of each domain.")
@click.option("--older-than", metavar="AGE", help="Delete only versions older than AGE too (30d, 12h, 90m; by the store's clock).")
@click.option("--keep-states/--no-keep-states", default=True, show_default=True, help="Keep every version a state names.")
@click.option("--keep-signed", is_flag=True, help="Keep every version signed by a trusted key ($MODELSTORE_TRUSTED_KEYS; any key without).")
@click.option("--save", is_flag=True, help="Store the policy for DOMAIN: `modelstore gc --apply` applies it.")
@click.option("--forget", is_flag=True, help="Remove DOMAIN's stored policy.")
@click.option("--apply", "--yes", "apply", is_flag=True, help="Delete (the default only shows what would go).")
@common_options
@pass_cmdline
def retain(
    cmdline: CommandLine,
    domain: str | None,
    keep_last: int | None,
    older_than: str | None,
    keep_states: bool,
    keep_signed: bool,
    save: bool,
    forget: bool,
    apply: bool,
) -> None:
    """Delete the versions of DOMAIN (of every domain) outside a retention policy.

    Keeps the --keep-last newest versions, with --older-than also the younger ones, every version a
    state names (unless --no-keep-states), with --keep-signed every signed one, and the parents of
    what it keeps. Without --keep-last, each domain's stored policy applies (--save stores one).
    A dry run unless --apply; `modelstore gc --apply` then reclaims the files (the bytes shown).
    Piped: one deleted DOMAIN:VERSION per line.
    """
    from ..retention import parse_duration

    store = cmdline.store()
    if forget:
        if domain is None:
            raise click.UsageError("--forget removes the stored policy of one DOMAIN: name it")
        store.forget_retention_policy(domain)
        cmdline.note(f"Removed the retention policy of {escape(domain)}")
        if keep_last is None:
            return
    age = parse_duration(older_than) if older_than else None
    if keep_last is None and (age is not None or save):
        raise click.UsageError("--older-than and --save go with --keep-last")
    report = store.retain(domain, keep_last, age, keep_states=keep_states, keep_signed=keep_signed, dry_run=not apply, save=save)
    if cmdline.mode == "json":
        cmdline.emit_json(report.to_json())
        return
    if cmdline.mode == "plain":
        cmdline.emit_rows([[ref] for ref in report.deleted])
    if save:
        cmdline.note(f"Saved the retention policy of {escape(domain)}: `modelstore gc --apply` applies it")
    if not report.domains and keep_last is None:
        cmdline.note("No domain has a stored retention policy (`modelstore retain DOMAIN --keep-last N --save` stores one).")
        return
    print_retention(cmdline, report, apply)
    count = plural(len(report.deleted), "version")
    if apply:
        cmdline.note(f"Deleted {count}; `modelstore gc --apply` reclaims {human_size(report.bytes)}.")
    else:
        cmdline.note(f"Would delete {count} ({human_size(report.bytes)} for gc to reclaim); run again with --apply to delete them.")


# --- watch ---------------------------------------------------------------------------------------


def event_environment(event) -> dict[str, str]:
    """What ``--exec`` gets: the event in ``MODELSTORE_EVENT``, ``MODELSTORE_DOMAIN``,
    ``MODELSTORE_VERSION``, ``MODELSTORE_STATE`` (empty when none), ``MODELSTORE_SEQ`` and
    ``MODELSTORE_EVENT_JSON``. Names were validated when the event was read: no value holds a
    control character, and none is ever put into the command line itself."""
    return {
        "MODELSTORE_EVENT": event.event,
        "MODELSTORE_DOMAIN": event.domain,
        "MODELSTORE_VERSION": "" if event.version is None else str(event.version),
        "MODELSTORE_STATE": event.state or "",
        "MODELSTORE_SEQ": str(event.seq),
        "MODELSTORE_EVENT_JSON": json.dumps(event.to_json(), sort_keys=True),
    }


@cli.command()
@click.argument("domain", required=False)
@click.option("--since", type=click.IntRange(min=0), metavar="N", help="Start after event N (default: from now on; 0: from the first).")
@click.option("--exec", "command", metavar="CMD", help="Run CMD (with the shell) for each event, the event in its environment.")
@click.option(
    "--interval", type=click.FloatRange(min=0.05), default=2.0, show_default=True, metavar="SECONDS", help="Seconds between polls."
)
@click.option("--once", is_flag=True, help="Handle what is in the feed now, then exit (for scripts and cron).")
@common_options
@pass_cmdline
def watch(cmdline: CommandLine, domain: str | None, since: int | None, command: str | None, interval: float, once: bool) -> None:
    """Follow the change feed: uploads, copies, deletes, state moves, signatures (of DOMAIN only, if given).

    Prints each event as a JSON line ({"seq", "event", "domain", "version", "state", "time", "id"}),
    or with --exec runs CMD for it with MODELSTORE_EVENT (uploaded, copied, deleted, state_set,
    state_removed, signed), MODELSTORE_DOMAIN, MODELSTORE_VERSION, MODELSTORE_STATE and MODELSTORE_SEQ
    in its environment; a CMD that fails is reported and the watch goes on. Restart with --since
    the last SEQ handled to miss nothing. Each poll costs a listing and a read per new event.
    """
    store = cmdline.store()
    position = store.feed_end() if since is None else since
    while True:
        problems: list[str] = []
        for event in store.changes(domain, since=position, problems=problems):
            position = event.seq
            if command is None:
                click.echo(json.dumps(event.to_json(), sort_keys=True), nl=True)
                sys.stdout.flush()
                continue
            result = subprocess.run(command, shell=True, env={**os.environ, **event_environment(event)}, check=False)
            if result.returncode != 0:
                cmdline.note(f"[yellow]--exec failed[/] (exit status {result.returncode}) for event {event.seq} ({event.event})")
        for problem in problems:
            cmdline.note(f"[yellow]warning[/]: {escape(problem)}")
        if once:
            return
        time.sleep(interval)


# --- lineage -----------------------------------------------------------------------------------------


def _label(node) -> str:
    if not node.exists:
        return f"[bold]{escape(node.ref)}[/] [red]not in this store[/]"
    if node.problem:
        return f"[bold]{escape(node.ref)}[/] [red]{escape(node.problem)}[/]"
    parts = [f"[bold]{escape(node.ref)}[/]", f"[dim]{escape(node.flavor or '')}[/]"]
    if node.created:
        parts.append(f"[dim]{node.created.date().isoformat()}[/]")
    if node.git_commit:
        parts.append(f"git {escape(node.git_commit[:10])}" + (" [yellow]dirty[/]" if node.git_dirty else ""))
    if node.data:
        parts.append("data " + ", ".join(f"{escape(name)} {sha[:12]}" for name, sha in node.data.items()))
    return " ".join(parts)


def _rows(node, relation: str, depth: int = 1) -> list[list[Any]]:
    rows = []
    for other in getattr(node, relation):
        data = ",".join(f"{name}:{sha}" for name, sha in other.data.items())
        rows.append(
            [{"parents": "parent", "children": "child"}[relation], depth, other.ref, node.ref, other.exists, other.git_commit, data]
        )
        rows += _rows(other, relation, depth + 1)
    return rows


@cli.command()
@click.argument("domain")
@version_option
@click.option("--depth", type=click.IntRange(1, 64), default=8, show_default=True, help="Generations shown up and down.")
@common_options
@pass_cmdline
def lineage(cmdline: CommandLine, domain: str, version: int | None, state_name: str | None, depth: int) -> None:
    """Where a version of DOMAIN (latest by default) came from and what came of it, as a tree.

    Its parents (recorded at upload: `--parent churn:3`), their parents..., and the versions that
    name it as a parent, each with its data fingerprints and git commit. Piped columns: relation
    (parent/child), generation, version, of, exists, git commit, data (name:sha256,...).
    """
    store = cmdline.store()
    v = store.resolve(domain, version, state_name)
    problems: list[str] = []
    root = store.lineage(v.domain, v.version, depth=depth, problems=problems)
    if cmdline.mode == "json":
        cmdline.emit_json(root.to_json())
        return
    if cmdline.mode == "plain":
        cmdline.emit_rows(_rows(root, "parents") + _rows(root, "children"))
        return
    from rich.tree import Tree

    tree = Tree(_label(root))
    for relation in ("parents", "children"):
        if getattr(root, relation):
            branch = tree.add(f"[cyan]{relation}[/]")
            pending = [(branch, n) for n in getattr(root, relation)]
            while pending:
                parent, node = pending.pop(0)
                leaf = parent.add(_label(node))
                pending += [(leaf, n) for n in getattr(node, relation)]
    cmdline.console.print(tree)
    if not root.parents and not root.children:
        cmdline.note("[dim]No parents recorded and no version names it (`modelstore upload DOMAIN FILE --parent DOMAIN:VERSION`).[/]")
    for problem in problems:
        cmdline.note(f"[yellow]note[/]: {escape(problem)}")


# --- card ------------------------------------------------------------------------------------------


@cli.command()
@click.argument("domain")
@version_option
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the card to this file (README.md) instead of stdout."
)
@click.option("--signatures", is_flag=True, help="Also list who signed the version (checked against the trust policy).")
@click.option("-f", "--force", is_flag=True, help="Replace --output if it exists.")
@common_options
@pass_cmdline
def card(
    cmdline: CommandLine, domain: str, version: int | None, state_name: str | None, output: Path | None, signatures: bool, force: bool
) -> None:
    """The model card of a version of DOMAIN (latest by default): a Hugging Face README.md.

    YAML front matter (license, tags, library, base model from its parents, datasets from its data
    fingerprints, metrics as model-index) and a body: the card's text (`--card description=...` at
    upload), lineage, data, metrics, params, input signature, environment, files. Every value from
    the store is escaped.
    """
    store = cmdline.store()
    text = store.card(domain, version, state=state_name, signatures=signatures)
    if output is None:
        click.echo(text, nl=False)
        return
    if output.exists() and not force:
        raise CLIError(f"{output} exists; pass --force to replace it")
    output.write_text(text, encoding="utf-8")
    cmdline.note(f"Wrote the model card of {escape(domain)} to {escape(str(output))}")
