"""Keeping a store healthy: ``delete``, ``verify`` and ``gc``; and the local ``cache``."""

from __future__ import annotations

import sys
from dataclasses import asdict

import click

from ..display import human_size
from .app import cli, common_options
from .context import CLIError, CommandLine, escape, pass_cmdline, plural
from .progress import progress


@cli.command()
@click.argument("domain")
@click.argument("version", required=False, type=click.IntRange(min=1))
@click.option("--all", "whole_domain", is_flag=True, help="Delete every version of DOMAIN, its states and the domain itself.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (required when stdin is not a terminal).")
@common_options
@pass_cmdline
def delete(cmdline: CommandLine, domain: str, version: int | None, whole_domain: bool, yes: bool) -> None:
    """Delete VERSION of DOMAIN, or with --all the whole domain.

    A deleted version leaves listings, `latest` falls back to the previous version and states
    pointing at it are removed. Its number is never reused (unless the whole domain is deleted);
    `modelstore gc` reclaims files no other version uses.
    """
    if (version is None) == (not whole_domain):
        raise click.UsageError("give a VERSION to delete, or --all to delete the whole domain")
    store = cmdline.store()
    if whole_domain:
        versions = store.list_versions(domain)  # fails here, before asking, if the domain does not exist
        what = f"domain {domain!r} with its {plural(len(versions), 'version')} and states"
    else:
        v = store.info(domain, version)
        states = [name for name, n in store.states(domain).items() if n == version]
        pointing = f"; states {', '.join(states)} point at it" if states else ""
        what = f"version {version} of {domain!r} ({human_size(v.size)}{pointing})"
    if not yes:
        if not sys.stdin.isatty():
            raise CLIError(f"not deleting {what} without confirmation: pass --yes (stdin is not a terminal)")
        click.confirm(f"Delete {what}?", abort=True, err=True)
    if whole_domain:
        deleted = store.delete_domain(domain)
        if cmdline.mode == "json":
            cmdline.emit_json({"domain": domain, "deleted": True, "versions": deleted})
        else:
            cmdline.note(f"Deleted domain [bold]{escape(domain)}[/] ({plural(len(deleted), 'version')})")
        return
    store.delete(domain, version)
    if cmdline.mode == "json":
        cmdline.emit_json({"domain": domain, "version": version, "deleted": True, "states_removed": states})
    else:
        removed = f"; removed states {', '.join(states)}" if states else ""
        cmdline.note(f"Deleted [bold]{escape(domain)}[/] version {version}{escape(removed)}")


@cli.command()
@click.argument("domain", required=False)
@click.argument("version", required=False, type=click.IntRange(min=1))
@click.option("--repair", is_flag=True, help="Delete corrupted objects and states left on deleted versions.")
@click.option(
    "--signatures",
    is_flag=True,
    help="Also check every signature (and, with $MODELSTORE_TRUSTED_KEYS, the trust policy); show who signed each version.",
)
@common_options
@pass_cmdline
def verify(cmdline: CommandLine, domain: str | None, version: int | None, repair: bool, signatures: bool) -> None:
    """Check the whole store, a domain, or one version against its records.

    Re-hashes every stored file and checks records and states. Exits with status 1 if anything is
    wrong (piped columns: domain, version, file, problem). With --repair, a corrupted object is
    deleted (upload the same file again to restore it) and a state pointing at a deleted version
    is removed; corrupt records are only reported. With --signatures, a signature that does not
    hold is a problem (bad-signature), one made before signatures covered dependencies too
    (partial-signature), and so is, given trusted keys, a version they did not sign (untrusted);
    the signers of each version are listed (JSON: "signers"). Signed pointers are checked too:
    latest or a state no trusted key vouches for (untrusted-pointer), one older than this machine
    saw (rolled-back), one naming a version that is gone (missing-version).
    """
    store = cmdline.store(existing=True)
    with progress(cmdline, "Verifying", None) as callback:
        report = store.verify(domain, version, repair=repair, signatures=signatures, progress=callback)
    if cmdline.mode == "json":
        cmdline.emit_json({**asdict(report), "ok": report.ok})
    elif cmdline.mode == "plain":
        cmdline.emit_rows([[p.domain, p.version, p.file, p.problem] for p in report.problems])
    elif report.problems:
        from rich.table import Table

        table = Table(title="[red]problems[/]", title_justify="left", header_style="bold")
        for name in ("domain", "version", "file", "problem", "detail"):
            table.add_column(name)
        for p in report.problems:
            detail = escape(p.detail) + (f" [green]→ {escape(p.repaired)}[/]" if p.repaired else "")
            table.add_row(escape(p.domain), str(p.version or ""), escape(p.file or ""), f"[red]{p.problem}[/]", detail)
        cmdline.console.print(table)
    if signatures and cmdline.mode == "rich" and report.signers:
        from rich.table import Table

        table = Table(title="signed by", title_justify="left", header_style="bold")
        table.add_column("version")
        table.add_column("key ids (valid signatures)")
        for where, signers in report.signers.items():
            table.add_row(escape(where), escape(", ".join(signers)) or "[dim]nobody[/]")
        cmdline.console.print(table)
    counts = f"{plural(report.versions, 'version')}, {plural(report.files, 'file')}, {human_size(report.bytes)}"
    if report.ok:
        if cmdline.mode != "json":
            cmdline.note(f"[green]OK[/]: verified {counts}")
    else:
        if cmdline.mode != "json":
            cmdline.note(f"[red]{plural(len(report.problems), 'problem')}[/] in {counts}; {'; '.join(verify_advice(report, repair))}")
        sys.exit(1)


#: problems `verify --repair` repairs (the others only a person can: see modelstore_core.verify)
REPAIRABLE = {"corrupted", "dangling-state", "bad-summary"}


def verify_advice(report, repair: bool) -> list[str]:
    """What to do about the problems ``verify`` found: what --repair does (or did), and what it cannot."""
    found = {p.problem for p in report.problems}
    advice = []
    if repair:
        advice.append(f"repaired {sum(1 for p in report.problems if p.repaired)}")
        if "corrupted" in found:
            advice.append("upload the deleted files again to restore the versions that use them")
    elif found & REPAIRABLE:
        advice.append(
            "`modelstore verify --repair` deletes corrupted objects (then upload those files again),"
            " removes states left on deleted versions and rebuilds summaries"
        )
    if "missing" in found:
        advice.append(
            "a missing file is restored by uploading a file with the same bytes again (to any domain) or putting its object back"
            " from a backup, never by --repair"
        )
    if found & {"corrupt-record", "stray"}:
        advice.append("corrupt records and stray entries are only reported: delete the version, or restore it from a backup")
    return advice


@cli.command()
@click.option("--apply", "--yes", "apply", is_flag=True, help="Delete (the default only shows what would go).")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=3600.0,
    show_default=True,
    metavar="SECONDS",
    help="An upload whose marker the store shows unchanged this long has stopped (at least 5 heartbeats: 300 s by default).",
)
@common_options
@pass_cmdline
def gc(cmdline: CommandLine, apply: bool, grace: float) -> None:
    """Reclaim what interrupted uploads and deleted versions left behind.

    A dry run unless --apply. Never touches a committed version or an upload in progress. The
    domains' stored retention policies (`modelstore retain DOMAIN --keep-last N --save`) are
    applied first. Piped: one key per line.
    """
    store = cmdline.store(existing=True)
    report = store.gc(grace=grace, dry_run=not apply)
    keys = [*report.objects, *report.markers, *report.temporary, *report.signatures]
    if cmdline.mode == "json":
        cmdline.emit_json({**asdict(report), "retention": report.retention.to_json() if report.retention else None})
        return
    if report.retention is not None and report.retention.domains:
        from .lifecycle import print_retention

        print_retention(cmdline, report.retention, apply)
    if cmdline.mode == "plain":
        cmdline.emit_rows([[key] for key in keys])
    elif keys and not apply:
        for key in keys:
            cmdline.console.print(f"  [dim]{escape(key)}[/]")
    what = (
        f"{plural(len(report.objects), 'unreferenced object')} ({human_size(report.bytes)}),"
        f" {plural(len(report.markers), 'stale upload marker')}, {plural(len(report.temporary), 'temporary file')}"
        + (f", {plural(len(report.signatures), 'signature')} of deleted versions" if report.signatures else "")
    )
    for problem in report.problems:
        cmdline.note(f"[yellow]left alone[/]: {escape(problem)}")
    if report.empty:
        cmdline.note("Nothing to collect.")
    elif apply:
        cmdline.note(f"Removed {what}.")
    else:
        cmdline.note(f"Would remove {what}; run `modelstore gc --apply` to delete them.")


@cli.group()
def cache() -> None:
    """The local cache of loaded files ($MODELSTORE_CACHE_DIR, else the per-user cache directory)."""


@cache.command("info")
@common_options
@pass_cmdline
def cache_info(cmdline: CommandLine) -> None:
    """Where the cache is and how much it holds. Piped: path, files, bytes."""
    from ..cache import Cache

    local = Cache()
    files, size = local.usage()
    if cmdline.mode == "json":
        cmdline.emit_json({"path": str(local.root), "files": files, "bytes": size})
    elif cmdline.mode == "plain":
        cmdline.emit_rows([[local.root, files, size]])
    else:
        cmdline.console.print(f"{escape(str(local.root))}: {plural(files, 'file')}, {human_size(size)}")


@cache.command("clear")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation (required when stdin is not a terminal).")
@common_options
@pass_cmdline
def cache_clear(cmdline: CommandLine, yes: bool) -> None:
    """Delete every cached file (later loads download, or copy, and verify them again) and make the cache
    directory yours alone (0700), if you own it.

    Also forgets what this machine saw: which versions latest and states named (for offline loads)
    and, under a trust policy, the newest signed pointers (after a deliberate reset of a store)."""
    from ..cache import Cache

    local = Cache()
    if not yes:
        if not sys.stdin.isatty():
            raise CLIError("not clearing the cache without confirmation: pass --yes (stdin is not a terminal)")
        click.confirm(f"Delete everything under {local.root}?", abort=True, err=True)
    files, size = local.clear()
    if cmdline.mode == "json":
        cmdline.emit_json({"path": str(local.root), "files": files, "bytes": size})
    else:
        cmdline.note(f"Removed {plural(files, 'cached file')} ({human_size(size)}) from {escape(str(local.root))}")
