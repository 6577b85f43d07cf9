"""Picking the winner and rebuilding its world: ``compare`` and ``env``."""

from __future__ import annotations

import click

from ..display import FOLDED, human_size, value_texts
from .app import cli, common_options
from .browse import version_option
from .context import CommandLine, escape, pass_cmdline


@cli.command()
@click.argument("domain")
@click.argument("versions", nargs=-1, required=True, type=click.IntRange(min=1))
@click.option("--higher", multiple=True, metavar="METRIC", help="Higher values of METRIC are better (repeatable).")
@click.option("--lower", multiple=True, metavar="METRIC", help="Lower values of METRIC are better (repeatable).")
@click.option("--all", "show_all", is_flag=True, help="Also show params, dependencies and data that are the same in every version.")
@common_options
@pass_cmdline
def compare(
    cmdline: CommandLine, domain: str, versions: tuple[int, ...], higher: tuple[str, ...], lower: tuple[str, ...], show_all: bool
) -> None:
    """VERSIONS of DOMAIN side by side: metrics (the best value of each marked), params, tags,
    states, sizes, flavor and framework, dependencies, git commit, data fingerprints.

    Whether higher or lower is better is known for common metric names (auc, accuracy, f1,
    precision, recall, r2... higher; loss, rmse, mse, mae, error... lower); --higher/--lower say
    it for others.

    \b
    Piped columns: section, key, one value per version, the versions with the best value
    """
    directions = {**{name: "higher" for name in higher}, **{name: "lower" for name in lower}}
    if set(higher) & set(lower):
        raise click.BadParameter(f"{', '.join(sorted(set(higher) & set(lower)))} given both --higher and --lower")
    comparison = cmdline.store(existing=True).compare(domain, list(versions), directions=directions)
    result = comparison.to_dict()
    if cmdline.mode == "json":
        cmdline.emit_json(result)
        return
    if cmdline.mode == "plain":
        rows = []
        for section, entries in result["sections"].items():
            for row in entries:
                rows.append([section, row["key"], *value_texts(row["values"]), row.get("best", [])])
        cmdline.emit_rows(rows)
        return

    from rich.table import Table

    table = Table(title=f"{escape(domain)}: versions {', '.join(map(str, comparison.versions))}", title_justify="left", header_style="bold")
    table.add_column("")
    for v in comparison.versions:
        table.add_column(f"v{v}", justify="right")
    hidden = 0
    for section, entries in result["sections"].items():
        shown = [row for row in entries if show_all or section not in FOLDED or row["differs"]]
        hidden += len(entries) - len(shown)
        if not shown:
            continue
        table.add_row(f"[bold cyan]{escape(section)}[/]", *([""] * len(comparison.versions)))
        for row in shown:
            cells = []
            for version, value, text in zip(comparison.versions, row["values"], value_texts(row["values"]), strict=True):
                text = human_size(value) if section == "size" and row["key"] == "bytes" else text
                if section == "git" and row["key"] == "commit" and value:
                    text = value[:10]
                if section == "data" and row["key"].endswith(".sha256") and value:
                    text = value[:12] + "…"
                cell = escape(text)
                if version in row.get("best", []) and len(row["best"]) < len(comparison.versions):
                    cell = f"[bold green]{cell} ★[/]"
                elif not row["differs"]:
                    cell = f"[dim]{cell}[/]"
                cells.append(cell)
            arrow = {"higher": " ↑", "lower": " ↓"}.get(row.get("direction") or "", "")
            table.add_row(f"  {escape(row['key'])}[dim]{arrow}[/]", *cells)
    cmdline.console.print(table)
    if hidden:
        cmdline.note(f"[dim]{hidden} rows the same in every version not shown (--all shows them)[/]")


@cli.command()
@click.argument("domain")
@version_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["requirements", "json"]),
    default="requirements",
    show_default=True,
    help="A requirements file for `pip install -r`, or JSON.",
)
@click.option("--check", is_flag=True, help="What differs here instead; exit status 1 when something that matters does.")
@click.option(
    "--include-local",
    is_flag=True,
    help="Also pin what was installed from a local directory, a VCS checkout or an archive (if your own index serves it).",
)
@common_options
@pass_cmdline
def env(cmdline: CommandLine, domain: str, version: int | None, state_name: str | None, fmt: str, check: bool, include_local: bool) -> None:
    """The environment a version of DOMAIN (latest by default) was stored in.

    Prints a requirements file: the distributions it needs pinned as recorded, with markers
    where they apply and the Python version as a comment:
    `modelstore env churn 3 > requirements.txt && pip install -r requirements.txt`.
    What was installed from a local directory, a VCS checkout or an archive (`pip install -e .`)
    no index serves: it is listed as a comment (pinned with --include-local).

    With --check, what differs between this environment and that one: Python, and each
    distribution ("matters" when loading would warn: Python's or the framework's or serializer's
    major.minor).
    """
    store = cmdline.store(existing=True)
    if check:
        result = store.check_environment(domain, version, state=state_name)
        if cmdline.mode == "json" or fmt == "json":
            cmdline.emit_json(result.to_dict())
        elif cmdline.mode == "plain":
            cmdline.emit_rows([[d.name, d.recorded, d.installed, d.matters] for d in result.differences])
        elif not result.differences:
            cmdline.note(f"[green]{escape(domain)} version {result.version}: this environment is the one it was stored with[/]")
        else:
            from rich.table import Table

            table = Table(title=f"{escape(domain)} version {result.version}: environment", title_justify="left", header_style="bold")
            for column in ("distribution", "recorded", "here", "matters"):
                table.add_column(column)
            for d in result.differences:
                matters = "[red]yes[/]" if d.matters else "[dim]no[/]"
                table.add_row(escape(d.name), escape(d.recorded), escape(d.installed or "not installed"), matters)
            cmdline.console.print(table)
        if not result.ok:
            raise SystemExit(1)
        return
    environment = store.environment(domain, version, state=state_name)
    if cmdline.mode == "json" or fmt == "json":
        cmdline.emit_json(environment.to_dict())
    else:
        click.echo(environment.requirements_txt(include_local=include_local), nl=False)
