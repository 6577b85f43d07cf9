"""Moving models between stores: ``copy``, ``mirror`` and ``import-legacy``."""

from __future__ import annotations

import sys
from dataclasses import asdict

import click

from ..display import human_size
from .app import cli, common_options
from .context import CommandLine, escape, pass_cmdline, plural
from .progress import progress


def _open(cmdline: CommandLine, url: str):
    from ..store import ModelStore

    return ModelStore(url, timeout=cmdline.timeout)


def report_move(cmdline: CommandLine, report, verb: str, notes: list[str] | None = None) -> None:
    """The summary of a copy, mirror or import; exit status 1 if anything was left undone."""
    if cmdline.mode == "json":
        cmdline.emit_json({**asdict(report), "ok": report.ok, "notes": notes or []})
    elif cmdline.mode == "plain":
        rows = [["copied", v] for v in report.copied] + [["skipped", v] for v in report.skipped]
        rows += [["conflict", f"{c.domain}:{c.version}", c.reason] for c in report.conflicts]
        rows += [["state", s] for s in report.states] + [["deleted", d] for d in report.deleted]
        rows += [["kept", k] for k in report.kept]
        rows += [["problem", p] for p in report.problems]
        cmdline.emit_rows(rows)
    for note in notes or []:
        if cmdline.mode != "json":
            cmdline.note(f"[yellow]note[/]: {escape(note)}")
    if cmdline.mode == "rich":
        for c in report.conflicts:
            cmdline.console.print(f"[red]conflict[/] {escape(c.domain)}:{c.version}: {escape(c.reason)}")
        for p in report.problems:
            cmdline.console.print(f"[red]problem[/] {escape(p)}")
    if cmdline.mode != "json":
        parts = [
            f"{verb} {plural(len(report.copied), 'version')}",
            f"skipped {len(report.skipped)} already there",
            f"{plural(len(report.conflicts), 'conflict')}",
            f"{plural(report.objects, 'object')} moved ({human_size(report.bytes_moved)})",
        ]
        if report.states:
            parts.append(f"{plural(len(report.states), 'state')} set")
        if report.deleted:
            parts.append(f"{len(report.deleted)} deleted")
        if report.kept:
            parts.append(f"{len(report.kept)} kept for a state set in the destination ({escape(', '.join(report.kept))})")
        colour = "green" if report.ok else "red"
        cmdline.note(f"[{colour}]{'OK' if report.ok else 'incomplete'}[/]: " + ", ".join(parts))
    if not report.ok:
        sys.exit(1)


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.argument("selection", nargs=-1, metavar="[DOMAIN[:VERSION|@STATE]]...")
@click.option("--no-states", is_flag=True, help="Do not carry the states of the copied versions over.")
@common_options
@pass_cmdline
def copy(cmdline: CommandLine, src: str, dst: str, selection: tuple[str, ...], no_states: bool) -> None:
    """Copy versions from store SRC to store DST (URLs or paths), keeping their numbers.

    Everything by default, or the domains, versions (churn:3) and states (churn@production)
    named. Only objects DST lacks are sent, each verified by sha256; signatures come along. Run
    it again after an interruption: it finishes the job and copies nothing twice. A number DST
    already uses for something else is a conflict (exit status 1), never overwritten.
    """
    source, target = _open(cmdline, src), _open(cmdline, dst)
    try:
        with progress(cmdline, "Copying", None) as callback:
            report = source.copy_to(target, select=list(selection) or None, states=not no_states, progress=callback)
    finally:
        source.close()
        target.close()
    report_move(cmdline, report, "copied")


@cli.command()
@click.argument("src")
@click.argument("dst")
@click.option("--state", "states", multiple=True, metavar="STATE", help="Only the versions this state names (repeatable).")
@click.option("--delete", is_flag=True, help="Also remove from DST the versions, states and domains SRC no longer has.")
@click.option(
    "--prune",
    is_flag=True,
    help="With --state: also delete from DST the versions no state of DST names any more (those the states moved off).",
)
@click.option("--allow-empty-source", is_flag=True, help="With --delete, mirror a SRC with no domains (empties DST).")
@common_options
@pass_cmdline
def mirror(cmdline: CommandLine, src: str, dst: str, states: tuple[str, ...], delete: bool, prune: bool, allow_empty_source: bool) -> None:
    """Bring DST, a read-only copy of SRC, in step (for cron or CI): new versions, moved states and,
    with --delete, removals. A run with nothing new only lists and transfers nothing. A SRC that
    does not exist is refused, and with --delete one with no domains (unless --allow-empty-source).

    A serving copy of some states: `modelstore mirror SRC DST --state production --delete --prune`
    holds the versions production names and nothing else; a version a state set in DST itself
    (not mirrored) names is kept."""
    if prune and not states:
        raise click.UsageError("--prune deletes the versions the mirrored states moved off: give --state STATE")
    source, target = _open(cmdline, src), _open(cmdline, dst)
    try:
        with progress(cmdline, "Mirroring", None) as callback:
            report = source.mirror_to(
                target, states=list(states) or None, delete=delete, prune=prune, allow_empty_source=allow_empty_source, progress=callback
            )
    finally:
        source.close()
        target.close()
    report_move(cmdline, report, "copied")


@cli.command("import-legacy")
@click.argument("legacy_url")
@click.argument("dst")
@click.option("--domain", "domains", multiple=True, metavar="DOMAIN", help="Only this legacy domain (repeatable).")
@common_options
@pass_cmdline
def import_legacy(cmdline: CommandLine, legacy_url: str, dst: str, domains: tuple[str, ...]) -> None:
    """Import every model of a store written by the original `modelstore` (0.0.x) into DST.

    LEGACY_URL is the legacy root: the directory (or s3://bucket/prefix, gs://...) that holds
    operatorai-model-store/. Each legacy model becomes a version (legacy id and creation time in
    its metadata, under "legacy"); running it again imports nothing twice. Pickled models stay
    pickles: they load only with trust=True.
    """
    from ..legacy import import_legacy as run_import

    source, target = _open(cmdline, legacy_url), _open(cmdline, dst)
    try:
        with progress(cmdline, "Importing", None) as callback:
            report = run_import(source, target, domains=list(domains) or None, progress=callback)
    finally:
        source.close()
        target.close()
    report_move(cmdline, report, "imported", report.notes)


@cli.command()
@click.argument("selection", metavar="DOMAIN[:VERSION|@STATE]")
@click.argument("ref")
@click.option("--plain-http", is_flag=True, help="Talk to the registry over http:// (a registry on loopback).")
@common_options
@pass_cmdline
def push(cmdline: CommandLine, selection: str, ref: str, plain_http: bool) -> None:
    """Send a version (latest by default) to REF, outside any store: oci://REGISTRY/REPOSITORY[:TAG]
    (modelstore-oci; the tag defaults to the version number).

    Files are verified before they leave and only what REF lacks is sent; the record and signatures
    go with them. Prints the pinned reference (REF@sha256:...); `modelstore pull` brings it back.
    """
    from ..replicate import Selector

    chosen = Selector.parse(selection)
    store = cmdline.store()
    v = store.resolve(chosen.domain, chosen.version, chosen.state)
    options = {"plain_http": True} if plain_http else {}
    with progress(cmdline, f"Pushing {chosen.domain} v{v.version}", None) as callback:
        digest = store.push(chosen.domain, ref, v.version, progress=callback, **options)
    pinned = f"{ref.rsplit('@', 1)[0]}@{digest}"
    if cmdline.mode == "json":
        cmdline.emit_json({"domain": chosen.domain, "version": v.version, "ref": ref, "digest": digest, "pinned": pinned})
    elif cmdline.mode == "plain":
        click.echo(pinned)
    else:
        cmdline.console.print(
            f"Pushed [bold]{escape(chosen.domain)}[/] version [bold green]{v.version}[/] to {escape(ref)} [dim]({digest})[/]"
        )


@cli.command()
@click.argument("ref")
@click.argument("domain", required=False)
@click.option("--plain-http", is_flag=True, help="Talk to the registry over http:// (a registry on loopback).")
@common_options
@pass_cmdline
def pull(cmdline: CommandLine, ref: str, domain: str | None, plain_http: bool) -> None:
    """Commit what REF holds (oci://REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST]) as a version of the store.

    A pushed version keeps its domain and number when the number is free (its signatures then
    still hold); otherwise, or into another DOMAIN, it is the domain's next version. An artifact
    another tool pushed becomes a raw-files version of DOMAIN (default: the repository's name).
    Every byte is verified before anything is committed. Prints the version.
    """
    store = cmdline.store()
    options = {"plain_http": True} if plain_http else {}
    with progress(cmdline, f"Pulling {ref}", None) as callback:
        v = store.pull(ref, domain, progress=callback, **options)
    if cmdline.mode == "json":
        cmdline.emit_json({"domain": v.domain, "version": v.version, "pulled_from": v.metadata.get("pulled_from")})
    elif cmdline.mode == "plain":
        click.echo(f"{v.domain}\t{v.version}")
    else:
        cmdline.console.print(f"Pulled {escape(ref)} as [bold]{escape(v.domain)}[/] version [bold green]{v.version}[/]")
