"""Keeping a store healthy: ``delete``, ``verify`` and ``gc``; and the local ``cache``."""

from __future__ import annotations

import sys
from dataclasses import asdict

import click

from .app import cli, common_options
from .context import CLIError, State, escape, human_size, pass_state, plural
from .progress import progress


@cli.command()
@click.argument("domain")
@click.argument("version", type=click.IntRange(min=1))
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (required when stdin is not a terminal).")
@common_options
@pass_state
def delete(state: State, domain: str, version: int, yes: bool) -> None:
    """Delete VERSION of DOMAIN.

    It leaves listings, `latest` falls back to the previous version and states pointing at it
    are removed. Its number is never reused; `modelstore gc` reclaims files no other version uses.
    """
    store = state.store()
    v = store.info(domain, version)  # fails here, before asking, if it does not exist
    states = [name for name, n in store.states(domain).items() if n == version]
    if not yes:
        if not sys.stdin.isatty():
            raise CLIError(f"not deleting version {version} of {domain!r} without confirmation: pass --yes (stdin is not a terminal)")
        pointing = f"; states {', '.join(states)} point at it" if states else ""
        click.confirm(f"Delete version {version} of {domain!r} ({human_size(v.size)}{pointing})?", abort=True, err=True)
    store.delete(domain, version)
    if state.mode == "json":
        state.emit_json({"domain": domain, "version": version, "deleted": True, "states_removed": states})
    else:
        removed = f"; removed states {', '.join(states)}" if states else ""
        state.note(f"Deleted [bold]{escape(domain)}[/] version {version}{escape(removed)}")


@cli.command()
@click.argument("domain", required=False)
@click.argument("version", required=False, type=click.IntRange(min=1))
@common_options
@pass_state
def verify(state: State, domain: str | None, version: int | None) -> None:
    """Re-hash stored files against their records: the whole store, a domain, or one version.

    Exits with status 1 if any file is missing or corrupted (piped columns: domain, version,
    file, problem).
    """
    store = state.store()
    with progress(state, "Verifying", None) as callback:
        report = store.verify(domain, version, progress=callback)

    if state.mode == "json":
        state.emit_json({**asdict(report), "ok": report.ok})
    elif state.mode == "plain":
        state.emit_rows([[p.domain, p.version, p.file, p.problem] for p in report.problems])
    elif report.problems:
        from rich.table import Table

        table = Table(title="[red]problems[/]", title_justify="left", header_style="bold")
        for name in ("domain", "version", "file", "problem"):
            table.add_column(name)
        for p in report.problems:
            table.add_row(escape(p.domain), str(p.version), escape(p.file), f"[red]{p.problem}[/]")
        state.console.print(table)

    counts = f"{plural(report.versions, 'version')}, {plural(report.files, 'file')}, {human_size(report.bytes)}"
    if report.ok:
        if state.mode != "json":
            state.note(f"[green]OK[/]: verified {counts}")
    else:
        if state.mode != "json":
            state.note(
                f"[red]{plural(len(report.problems), 'problem')}[/] in {counts};"
                " a corrupted or missing file cannot be loaded: upload that version again"
            )
        sys.exit(1)


@cli.command()
@click.option("--apply", "--yes", "apply", is_flag=True, help="Delete (the default only shows what would go).")
@click.option(
    "--grace", type=click.FloatRange(min=0), default=3600.0, show_default=True, metavar="SECONDS",
    help="Spare uploads from other machines younger than this.",
)
@common_options
@pass_state
def gc(state: State, apply: bool, grace: float) -> None:
    """Reclaim what interrupted uploads and deleted versions left behind.

    A dry run unless --apply. Never touches a committed version or an upload in progress.
    Piped: one key per line.
    """
    store = state.store()
    report = store.gc(grace=grace, dry_run=not apply)
    keys = [*report.objects, *report.markers, *report.temporary]
    if state.mode == "json":
        state.emit_json(asdict(report))
        return
    if state.mode == "plain":
        state.emit_rows([[key] for key in keys])
    elif keys and not apply:
        for key in keys:
            state.console.print(f"  [dim]{escape(key)}[/]")
    what = (
        f"{plural(len(report.objects), 'unreferenced object')} ({human_size(report.bytes)}),"
        f" {plural(len(report.markers), 'stale upload marker')}, {plural(len(report.temporary), 'temporary file')}"
    )
    if report.empty:
        state.note("Nothing to collect.")
    elif apply:
        state.note(f"Removed {what}.")
    else:
        state.note(f"Would remove {what}; run `modelstore gc --apply` to delete them.")


@cli.group()
def cache() -> None:
    """The local cache of loaded files ($MODELSTORE_CACHE_DIR, else the per-user cache directory)."""


@cache.command("info")
@common_options
@pass_state
def cache_info(state: State) -> None:
    """Where the cache is and how much it holds. Piped: path, files, bytes."""
    from ..materialize import Cache

    local = Cache()
    files, size = local.usage()
    if state.mode == "json":
        state.emit_json({"path": str(local.root), "files": files, "bytes": size})
    elif state.mode == "plain":
        state.emit_rows([[local.root, files, size]])
    else:
        state.console.print(f"{escape(str(local.root))}: {plural(files, 'file')}, {human_size(size)}")


@cache.command("clear")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (required when stdin is not a terminal).")
@common_options
@pass_state
def cache_clear(state: State, yes: bool) -> None:
    """Delete every cached file; later loads download (or copy) and verify them again."""
    from ..materialize import Cache

    local = Cache()
    if not yes:
        if not sys.stdin.isatty():
            raise CLIError("not clearing the cache without confirmation: pass --yes (stdin is not a terminal)")
        click.confirm(f"Delete everything under {local.root}?", abort=True, err=True)
    files, size = local.clear()
    if state.mode == "json":
        state.emit_json({"path": str(local.root), "files": files, "bytes": size})
    else:
        state.note(f"Removed {plural(files, 'cached file')} ({human_size(size)}) from {escape(str(local.root))}")
