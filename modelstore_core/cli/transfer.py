"""Moving files in and out: ``upload`` and ``download``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..display import human_size
from ..fields import FIELDS
from .app import cli, common_options
from .browse import version_option
from .context import CommandLine, escape, pass_cmdline, plural
from .progress import progress


def parse_pairs(values: tuple[str, ...], kind: str, option: str) -> dict[str, object] | list[str]:
    """``--metric auc=0.91``, ``--param lr=0.1``, ``--tag team=risk``: ``NAME=VALUE`` pairs whose
    values are of ``kind`` (:class:`~modelstore_core.fields.RecordField`'s ``option_values``):
    ``number`` (``int`` when written as one), ``scalar`` (a number, ``true``/``false``, ``null``,
    else the text), ``text`` (as it is); or ``items``: each value one item of a list (``--parent
    churn:3``). The store checks names and values."""
    if kind == "items":
        return list(values)
    pairs: dict[str, object] = {}
    literals = {"true": True, "false": False, "null": None}
    for value in values:
        key, sep, text = value.partition("=")
        if kind == "number":
            parsed = _number(text.strip())
            if not sep or not key or parsed is None:
                raise click.BadParameter(f"{value!r} is not NAME=NUMBER", param_hint=option)
        elif not sep or not key:
            raise click.BadParameter(f"{value!r} is not {'KEY' if kind == 'text' else 'NAME'}=VALUE", param_hint=option)
        elif kind == "scalar":
            parsed = literals[text] if text in literals else text if (number := _number(text)) is None else number
        else:
            parsed = text
        pairs[key] = parsed
    return pairs


def field_options(command):
    """An option for each record field that ``modelstore upload`` takes (:data:`~modelstore_core.fields.FIELDS`)."""
    for f in reversed([f for f in FIELDS if f.option]):
        metavar = {"number": "NAME=NUMBER", "text": "KEY=VALUE", "items": "VERSION"}.get(f.option_values or "", "NAME=VALUE")
        command = click.option(f.option, f.name, multiple=True, metavar=metavar, help=f.option_help)(command)
    return command


def _number(text: str) -> int | float | None:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return None


def total_size(paths: list[Path]) -> int:
    """Bytes under ``paths`` (files, and directories recursively); a missing path raises FileNotFoundError."""
    total = 0
    for path in paths:
        if path.is_dir():
            total += sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        else:
            total += path.stat().st_size  # FileNotFoundError names the path
    return total


@cli.command()
@click.argument("domain")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--extra",
    "extras",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Store FILE (or a directory) beside the model, under extras/ (repeatable).",
)
@field_options
@common_options
@pass_cmdline
def upload(cmdline: CommandLine, domain: str, files: tuple[Path, ...], extras: tuple[Path, ...], **given: tuple[str, ...]) -> None:
    """Store FILES (files or directories, as they are) as the next version of DOMAIN.

    `--metric auc=0.91` records a metric (a finite number), `--param lr=0.1` a param (a
    number, true/false, null, else the text): `modelstore compare` and `ls --where` use them.

    Prints the new version; when piped, stdout holds only its number:
    `v=$(modelstore upload churn model.onnx)`.
    """
    recorded = {f.argument: parse_pairs(given[f.name], f.option_values, f.option) for f in FIELDS if f.option and given.get(f.name)}
    size = total_size([*files, *extras])
    store = cmdline.store()
    with progress(cmdline, f"Uploading {domain}", size) as callback:
        v = store.upload(domain, files=list(files), extras=list(extras), progress=callback, **recorded)

    if cmdline.mode == "json":
        cmdline.emit_json(v.metadata)
    elif cmdline.mode == "plain":
        click.echo(v.version)
    else:
        n = len(v.files)
        cmdline.console.print(
            f"Uploaded [bold]{escape(domain)}[/] version [bold green]{v.version}[/]"
            f" [dim]({plural(n, 'file')}, {human_size(v.size)}) to {escape(store.url)}[/]"
        )


@cli.command()
@click.argument("domain")
@version_option
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to write the files into (default: ./DOMAIN-VERSION).",
)
@click.option("-f", "--force", is_flag=True, help="Replace files of the version already in the directory.")
@common_options
@pass_cmdline
def download(cmdline: CommandLine, domain: str, version: int | None, state_name: str | None, output: Path | None, force: bool) -> None:
    """Write the verified files of a version of DOMAIN (latest by default) into a directory.

    Model files land at the top, extras under extras/. Prints the directory. Files already there
    are never replaced without --force.
    """
    store = cmdline.store(existing=True)
    v = store.info(domain, version, state=state_name)
    with progress(cmdline, f"Downloading {domain} v{v.version}", v.size) as callback:
        target = store.download(domain, v.version, to=output, overwrite=force, progress=callback)

    if cmdline.mode == "json":
        cmdline.emit_json({"domain": domain, "version": v.version, "path": str(target), "files": [f.path for f in v.files], "size": v.size})
    elif cmdline.mode == "plain":
        click.echo(str(target))
    else:
        shown = os.path.relpath(target) if not os.path.relpath(target).startswith("..") else str(target)
        n = len(v.files)
        cmdline.console.print(
            f"Downloaded [bold]{escape(domain)}[/] version [bold green]{v.version}[/]"
            f" [dim]({plural(n, 'file')}, {human_size(v.size)}) to[/] {escape(shown)}"
        )
