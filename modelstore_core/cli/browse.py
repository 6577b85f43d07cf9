"""Reading a store: ``ls``, ``info`` and ``state``."""

from __future__ import annotations

from typing import Any

import click

from ..display import clipped, differing_keys, first_entries, flatten, human_size, pairs_text, restated, shape_text, unset, value_text
from ..errors import NotFoundError
from ..fields import FIELDS
from ..flavor import PARTS
from ..protocol import read
from ..protocol.records import CORE_KEYS
from ..protocol.summary import SEARCHED
from ..version import Version
from .app import cli, common_options
from .context import CommandLine, escape, human_time, iso, pass_cmdline, plural


def fetch_records(store, versions: list[Version], cmdline: CommandLine | None = None) -> list[dict[str, Any]]:
    """The records of ``versions``, fetched concurrently; versions deleted meanwhile are left out,
    and so are corrupt ones, each named in a note."""
    errors: list = []
    found = [v.metadata for v in store.fetch_metadata(versions, errors)]
    if cmdline is not None:
        for error in errors:
            cmdline.note(f"[yellow]skipped[/]: {escape(error)}")
    return found


def states_by_version(states: dict[str, int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for name, version in sorted(states.items()):
        out.setdefault(version, []).append(name)
    return out


def git_label(commit: str | None, dirty: bool | None) -> str:
    if not commit:
        return ""
    return commit[:10] + (" [yellow](dirty)[/]" if dirty else "")


# --- ls -------------------------------------------------------------------------------------


@cli.command("ls")
@click.argument("domain", required=False)
@click.option(
    "--where",
    "where",
    multiple=True,
    metavar="EXPR",
    help="Only versions matching EXPR, e.g. 'metrics.auc>0.9', 'tags.team=risk', 'state=production' (repeatable: all must match).",
)
@click.option(
    "--sort", "sort", multiple=True, metavar="FIELD", help="Order by FIELD, '-FIELD' for descending, e.g. -metrics.auc (repeatable)."
)
@click.option(
    "-n", "--limit", type=click.IntRange(min=1), help="At most N versions (the first N in the order shown: newest first by default)."
)
@common_options
@pass_cmdline
def ls(cmdline: CommandLine, domain: str | None, where: tuple[str, ...], sort: tuple[str, ...], limit: int | None) -> None:
    """List the domains, or the versions of DOMAIN (of every domain with --where or --sort).

    \b
    Fields for --where and --sort: version, created, flavor, format, files, size, state (--where
    only), tags.NAME, metrics.NAME, params.NAME, git.commit (= matches a prefix), git.dirty.
    Operators: = != > >= < <= and ~ (contains). A version without the field never matches.
    \b
    Piped columns, domains:  domain, version count, latest version, when it was committed
    On a terminal, the versions table has a column of the params that differ between the versions
    listed, as many as the terminal's width leaves room for (a note names the others).
    \b
    Piped columns, versions: version, created, flavor, size in bytes, states, git commit,
                             git dirty (true/false), tags (k=v,...), metrics, params;
                             across domains the domain comes first
    With --json each version also lists the key ids of its signature documents ("signatures",
    not checked: `modelstore verify --signatures` checks them).
    """
    from ..search import Query, Trust, search

    store = cmdline.store(existing=True)
    if domain is None and not where and not sort:
        list_domains(cmdline, store)
        return
    query = Query.parse(where, sort, limit)  # a bad expression fails before any request
    problems: list[str] = []
    hits = search(store.storage, domain, query, states=True, problems=problems, from_latest=True, trust=Trust.of(store))
    for problem in problems:
        cmdline.note(f"[yellow]{escape(problem)}[/]")
    rows = [hit_row(hit) for hit in hits]
    across = domain is None
    where_text = f" where {escape(' and '.join(where))}" if where else ""
    if cmdline.mode == "json":
        from ..signing import signers_by_version

        signers = {d: signers_by_version(store.storage, d) for d in sorted({r["domain"] for r in rows})}  # one listing each
        for r in rows:
            r["signatures"] = sorted(signers[r["domain"]].get(r["version"], []))
        cmdline.emit_json(rows)
    elif cmdline.mode == "plain":
        cmdline.emit_rows(
            [
                [*([r["domain"]] if across else []), r["version"], r["created"], r["flavor"], r["size"], r["states"],
                 r["git_commit"], r["git_dirty"], *(r[f.name] for f in SEARCHED)]
                for r in rows
            ]
        )  # fmt: skip
    elif not rows:
        if where:
            cmdline.note(f"No version {'of ' + escape(domain) + ' ' if domain else ''}matches {escape(' and '.join(where))}.")
        else:
            cmdline.note(f"Domain [bold]{escape(domain or '')}[/] has no versions.")
    else:
        print_versions(cmdline, rows, f"{escape(domain) if domain else 'versions'}{where_text} — {escape(store.url)}", across)


def print_versions(cmdline: CommandLine, rows: list[dict[str, Any]], title: str, across: bool) -> None:
    """The versions table on a terminal, with a column of the params that differ between the
    versions listed (as ``compare`` folds them), as many as the terminal's width leaves room for."""
    from rich.measure import Measurement

    differing = differing_keys([r["params"] for r in rows])
    table = versions_table(rows, title, across, [])
    room = cmdline.console.width - Measurement.get(cmdline.console, cmdline.console.options, table).maximum - PARAMS_COLUMN_EDGES
    shown: list[str] = []
    for key in differing:  # each param that still fits, in name order
        widest = max(len(pairs_text({k: r["params"][k] for k in [*shown, key] if k in r["params"]})) for r in rows)
        if widest <= room:
            shown.append(key)
    cmdline.console.print(versions_table(rows, title, across, shown) if shown else table)
    if left := [key for key in differing if key not in shown]:
        names = escape(", ".join(left[:MAX_NAMED]) + (", …" if len(left) > MAX_NAMED else ""))
        verb = "differs" if len(left) == 1 else "differ"
        cmdline.note(
            f"[dim]{plural(len(left), 'param')} that {verb} between these versions not shown at this width: {names}"
            " (`modelstore compare` shows them)[/]"
        )


#: What a column adds to a table's width beside its text (a border and a space each side), and the
#: names of params left out that a note lists at most.
PARAMS_COLUMN_EDGES, MAX_NAMED = 3, 8


def versions_table(rows: list[dict[str, Any]], title: str, across: bool, params: list[str]):
    """The rich table of ``ls``: one row per version, with the ``params`` named."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    if across:
        table.add_column("domain", style="bold")
    table.add_column("version", justify="right", style="bold")
    for name in ("created", "flavor"):
        table.add_column(name)
    table.add_column("size", justify="right")
    for name in ("states", "git", "tags"):
        table.add_column(name)
    with_metrics = any(r["metrics"] for r in rows)
    if with_metrics:
        table.add_column("metrics")
    if params:
        table.add_column("params")
    for r in rows:
        table.add_row(
            *([escape(r["domain"])] if across else []),
            str(r["version"]),
            human_time(r["created"]),
            escape(r["flavor"] + (f" ({', '.join(f'{n}: {f}' for n, f in r['parts'].items())})" if r["parts"] else "")),
            human_size(r["size"]),
            f"[green]{escape(', '.join(r['states']))}[/]",
            git_label(r["git_commit"], r["git_dirty"]),
            escape(pairs_text(r["tags"])),
            *([escape(pairs_text(r["metrics"]))] if with_metrics else []),
            *([escape(pairs_text({k: r["params"][k] for k in params if k in r["params"]}))] if params else []),
        )
    return table


def hit_row(hit) -> dict[str, Any]:
    """A version ``find`` matched, as ``ls`` prints it (from the summary: no record read)."""
    e = hit.entry
    return {
        "domain": hit.domain,
        "version": e.version,
        "created": e.created_text,
        "flavor": e.flavor,
        "parts": e.parts,
        "format": e.format,
        "files": e.files,
        "size": e.size,
        "states": hit.states or [],
        "git_commit": e.git_commit,
        "git_dirty": e.git_dirty,
        **e.values,
    }


def list_domains(cmdline: CommandLine, store) -> None:
    """One row per domain from one listing of every domain's keys (a request per page, however many
    domains): its versions, the latest, and when that was committed (its record's time)."""
    rows = [
        {
            "domain": domain,
            "versions": len(versions),
            "latest": versions[0][0] if versions else None,
            "created": iso(versions[0][1].modified) if versions else None,
        }
        for domain, versions in read.every_version(store.storage).items()
    ]

    if cmdline.mode == "json":
        cmdline.emit_json(rows)
    elif cmdline.mode == "plain":
        cmdline.emit_rows([[r["domain"], r["versions"], r["latest"], r["created"]] for r in rows])
    elif not rows:
        cmdline.note(f"No domains in {escape(store.url)} yet; `modelstore upload DOMAIN FILE...` stores the first version.")
    else:
        from rich.table import Table

        table = Table(title=escape(store.url), title_justify="left", header_style="bold")
        table.add_column("domain", style="bold")
        table.add_column("versions", justify="right")
        table.add_column("latest", justify="right")
        table.add_column("created")
        for r in rows:
            table.add_row(escape(r["domain"]), str(r["versions"]), str(r["latest"] or ""), human_time(r["created"]))
        cmdline.console.print(table)


# --- info ----------------------------------------------------------------------------------


def version_option(f):
    f = click.option("--state", "state_name", metavar="NAME", help="The version that state NAME points at.")(f)
    f = click.argument("version", required=False, type=click.IntRange(min=1))(f)
    return f


@cli.command()
@click.argument("domain")
@version_option
@click.option("--signatures", is_flag=True, help="Who signed the version instead: each signature, checked.")
@click.option("--all", "show_all", is_flag=True, help="Also unset (null) values and the plugin metadata the params restate.")
@common_options
@pass_cmdline
def info(cmdline: CommandLine, domain: str, version: int | None, state_name: str | None, signatures: bool, show_all: bool) -> None:
    """The full metadata of a version of DOMAIN (latest by default).

    On a terminal, values left unset (null: the library's default) and plugin metadata that the
    params restate (the flavor's hyperparameters) are left out unless --all. Printed as JSON
    when piped or with --json: the version record exactly as stored. With --signatures, its
    signatures instead (key id, time, whether it holds, whether it is trusted).
    """
    store = cmdline.store(existing=True)
    if signatures:
        print_signatures(cmdline, store, domain, version, state_name)
        return
    record = store.info(domain, version, state=state_name).metadata
    if cmdline.mode != "rich":
        cmdline.emit_json(record)
        return
    states = [name for name, n in store.states(domain).items() if n == record["version"]]
    print_record(cmdline, record, states, show_all)


def print_signatures(cmdline: CommandLine, store, domain: str, version: int | None, state_name: str | None) -> None:
    v = store.resolve(domain, version, state_name)
    found = store.signatures(domain, v.version)
    rows = [{"keyid": s.keyid, "signed": s.signed, "valid": s.valid, "trusted": s.trusted, "problem": s.problem} for s in found]
    if cmdline.mode != "rich":
        cmdline.emit_json({"domain": domain, "version": v.version, "signatures": rows})
    elif not rows:
        name = escape(domain)
        cmdline.note(f"{name} version {v.version} is not signed; `modelstore sign {name} {v.version} --key KEY` signs it.")
    else:
        from rich.table import Table

        table = Table(title=f"{escape(domain)} version {v.version}: signatures", title_justify="left", header_style="bold")
        for column in ("key id", "signed", "valid", "trusted"):
            table.add_column(column)
        for r in rows:
            valid = "[green]yes[/]" if r["valid"] else f"[red]no: {escape(r['problem'])}[/]"
            table.add_row(escape(r["keyid"]), human_time(r["signed"]) if r["signed"] else "", valid, "yes" if r["trusted"] else "no")
        cmdline.console.print(table)


def print_record(cmdline: CommandLine, record: dict[str, Any], states: list[str], show_all: bool) -> None:
    from rich.table import Table

    flavor = record["flavor"]
    git = record.get("git") or {}
    runtime = record.get("runtime") or {}
    files = record["files"]

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    grid.add_row("domain", escape(record["domain"]))
    grid.add_row("version", f"[bold]{record['version']}[/]")
    grid.add_row("created", human_time(record["created"]) + f"  [dim]{escape(record['created'])}[/]")
    plugin = f"{flavor.get('plugin') or ''} {flavor.get('plugin_version') or ''}".strip()
    grid.add_row(
        "flavor",
        f"{escape(flavor['name'])} [dim](format {escape(flavor.get('format'))}, by {escape(plugin)})[/]"
        + ("" if flavor.get("safe", True) else "  [red]unsafe: loads only with trust=True[/]"),
    )
    if flavor.get("model_class"):
        grid.add_row("class", escape(flavor["model_class"]))
    for part in flavor["options"]["parts"] if flavor["name"] == PARTS else ():
        of = part["flavor"]
        grid.add_row(
            f"part {escape(part['name'])}",
            f"{escape(of['name'])} [dim](format {escape(of.get('format'))}, by {escape(of.get('plugin') or '')})[/]"
            + (f" {escape(of['model_class'])}" if of.get("model_class") else "")
            + ("" if of.get("safe", True) else "  [red]unsafe: loads only with trust=True[/]"),
        )
    grid.add_row("size", f"{human_size(sum(f['size'] for f in files))} in {plural(len(files), 'file')}")
    grid.add_row("states", f"[green]{escape(', '.join(states))}[/]" if states else "[dim]none[/]")
    for f in FIELDS:
        if f.show == "inline":
            shown, more = first_entries(record.get(f.name) or {})
            text = clipped(pairs_text(dict(shown))) + (f" {more}" if more else "")
            grid.add_row(f.name, escape(text) if shown else "[dim]none[/]")
        elif f.show == "versions" and record.get(f.name):
            grid.add_row(f.name, escape(", ".join(str(v) for v in record[f.name])))
    if git:
        details = ", ".join(x for x in (git.get("branch"), "dirty" if git.get("dirty") else None, git.get("remote")) if x)
        grid.add_row("git", f"{escape(git.get('commit') or '')} [dim]{escape(details)}[/]")
    if runtime:
        grid.add_row(
            "runtime",
            escape(f"{runtime.get('implementation', 'Python')} {runtime.get('python', '')} on {runtime.get('platform', '')}"),
        )
    cmdline.console.print(grid)

    table = Table(title="files", title_justify="left", header_style="bold")
    table.add_column("path")
    table.add_column("size", justify="right")
    table.add_column("sha256", style="dim")
    for f in files:
        table.add_row(escape(f["path"]), human_size(f["size"]), f["sha256"][:16] + "…")
    cmdline.console.print(table)

    hidden = 0
    for f in FIELDS:
        value = record.get(f.name)
        if value and f.show == "pairs" and not show_all:
            set_values = {k: v for k, v in value.items() if not unset(v)}
            hidden, value = hidden + len(value) - len(set_values), set_values
        if value and f.show in SHOW:
            SHOW[f.show](cmdline, f.name, value)

    dependencies = record.get("dependencies") or {}
    if dependencies:
        deps = Table(title="dependencies", title_justify="left", header_style="bold")
        deps.add_column("distribution")
        deps.add_column("version")
        shown, more = first_entries(dependencies)
        for name, ver in shown:
            deps.add_row(escape(clipped(name)), escape(clipped(str(ver))))
        cmdline.console.print(deps)
        if more:
            cmdline.note(f"[dim]{escape(more)}[/]")

    extra = flatten({k: v for k, v in record.items() if k not in CORE_KEYS})
    shown = extra if show_all else {key: value for key, value in extra.items() if not (restated(key) or unset(value))}
    hidden += len(extra) - len(shown)
    if shown:
        table = Table(title="plugin metadata", title_justify="left", header_style="bold")
        table.add_column("key", style="cyan")
        table.add_column("value")
        rows, more = first_entries(shown)
        for key, value in rows:
            table.add_row(escape(clipped(key)), escape(clipped(value_text(value, "null"))))
        cmdline.console.print(table)
        if more:
            cmdline.note(f"[dim]{escape(more)}[/]")
    if hidden:
        what = "of unset values or of plugin metadata the params restate"
        cmdline.note(f"[dim]{plural(hidden, 'row')} {what} not shown (--all shows them)[/]")


def print_pairs(cmdline: CommandLine, title: str, values: dict[str, Any]) -> None:
    """A name/value table (metrics, params)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("name", style="cyan")
    table.add_column("value")
    shown, more = first_entries(dict(sorted(values.items())))
    for name, value in shown:
        table.add_row(escape(name), escape(clipped(value_text(value, "null"))))
    cmdline.console.print(table)
    if more:
        cmdline.note(f"[dim]{escape(more)}[/]")


def print_signature(cmdline: CommandLine, title: str, signature: dict[str, Any]) -> None:
    """The input signature (``modelstore info``): one row per column or tensor."""
    from rich.table import Table

    title = f"input {title} [dim]({escape(signature['format'])}, from {escape(signature['source'])})[/]"
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("input", "dtype", "shape", "feature type"):
        table.add_column(column)
    for entry in signature["inputs"][:MAX_SIGNATURE_ROWS]:
        table.add_row(
            escape(entry.get("name") if entry.get("name") is not None else "(unnamed)"),
            escape(entry.get("dtype") or "?"),
            escape(shape_text(entry.get("shape"))),
            escape(entry.get("feature_type") or ""),
        )
    cmdline.console.print(table)
    if len(signature["inputs"]) > MAX_SIGNATURE_ROWS:
        cmdline.note(f"[dim]… and {len(signature['inputs']) - MAX_SIGNATURE_ROWS} more inputs (`modelstore info --json` lists them)[/]")


def print_card(cmdline: CommandLine, title: str, card: dict[str, str]) -> None:
    """A model card's sections (``modelstore card`` writes the whole README.md)."""
    from rich.table import Table

    table = Table(title=f"{title} [dim](`modelstore card` writes it as a README.md)[/]", title_justify="left", header_style="bold")
    table.add_column("section", style="cyan")
    table.add_column("text")
    for name, text in card.items():
        table.add_row(escape(name), escape(clipped(text)).replace("\\x0a", "\n"))
    cmdline.console.print(table)


def print_datasets(cmdline: CommandLine, title: str, data: dict[str, Any]) -> None:
    """Data fingerprints: one row per dataset."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", header_style="bold")
    for column in ("dataset", "kind", "shape", "columns", "sha256"):
        table.add_column(column)
    for name, entry in sorted(data.items()):
        shape = shape_text(entry.get("shape")) or human_size(entry.get("bytes"))
        columns = entry.get("columns") or []
        shown = ", ".join(columns[:8]) + (f" … ({len(columns)})" if len(columns) > 8 else "")
        table.add_row(escape(name), escape(entry["kind"]), escape(shape), escape(shown), entry["sha256"][:16] + "…")
    cmdline.console.print(table)


#: How ``info`` shows a record field, by its declared ``show`` (:mod:`modelstore_core.fields`;
#: ``inline`` fields are a line of the version's grid).
SHOW = {"pairs": print_pairs, "signature": print_signature, "datasets": print_datasets, "card": print_card}


#: Inputs of a signature shown on a terminal (a wide table has thousands of columns).
MAX_SIGNATURE_ROWS = 50


# --- state ---------------------------------------------------------------------------------


@cli.group("state")
def state_group() -> None:
    """Named pointers (production, staging...) to versions of a domain."""


@state_group.command("set")
@click.argument("domain")
@click.argument("version", type=click.IntRange(min=1))
@click.argument("name")
@common_options
@pass_cmdline
def state_set(cmdline: CommandLine, domain: str, version: int, name: str) -> None:
    """Point state NAME of DOMAIN at VERSION (atomically replacing where it pointed)."""
    store = cmdline.store()
    try:
        before = store.states(domain).get(name)
    except NotFoundError:
        before = None  # set_state names what is missing
    store.set_state(domain, version, name)
    if cmdline.mode == "json":
        cmdline.emit_json({"domain": domain, "state": name, "version": version, "previous": before})
    else:
        moved = f" (was {before})" if before not in (None, version) else ""
        cmdline.note(f"[green]{escape(domain)}[/]: {escape(name)} → version {version}{moved}")


@state_group.command("rm")
@click.argument("domain")
@click.argument("name")
@common_options
@pass_cmdline
def state_rm(cmdline: CommandLine, domain: str, name: str) -> None:
    """Remove state NAME of DOMAIN (the version itself stays)."""
    cmdline.store().remove_state(domain, name)
    if cmdline.mode == "json":
        cmdline.emit_json({"domain": domain, "state": name, "removed": True})
    else:
        cmdline.note(f"[green]{escape(domain)}[/]: removed state {escape(name)}")


@state_group.command("ls")
@click.argument("domain")
@common_options
@pass_cmdline
def state_ls(cmdline: CommandLine, domain: str) -> None:
    """The states of DOMAIN and the versions they point at (piped columns: state, version)."""
    states = cmdline.store(existing=True).states(domain)
    if cmdline.mode == "json":
        cmdline.emit_json(states)
    elif cmdline.mode == "plain":
        cmdline.emit_rows([[name, version] for name, version in states.items()])
    elif not states:
        cmdline.note(f"Domain [bold]{escape(domain)}[/] has no states; `modelstore state set {escape(domain)} VERSION NAME` adds one.")
    else:
        from rich.table import Table

        table = Table(title=escape(domain), title_justify="left", header_style="bold")
        table.add_column("state", style="green")
        table.add_column("version", justify="right")
        for name, version in states.items():
            table.add_row(escape(name), str(version))
        cmdline.console.print(table)
