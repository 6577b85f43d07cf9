"""Moving files in and out: ``upload`` and ``download``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .app import cli, common_options
from .browse import version_option
from .context import CommandLine, escape, human_size, pass_cmdline, plural
from .progress import progress


def parse_tags(values: tuple[str, ...]) -> dict[str, str]:
    tags = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--tag")
        tags[key] = val
    return tags


def parse_metrics(values: tuple[str, ...]) -> dict[str, float]:
    """``--metric auc=0.91``: numbers (``int`` when written as one); the store checks names and finiteness."""
    metrics: dict[str, float] = {}
    for value in values:
        key, sep, text = value.partition("=")
        number = _number(text.strip())
        if not sep or not key or number is None:
            raise click.BadParameter(f"{value!r} is not NAME=NUMBER", param_hint="--metric")
        metrics[key] = number
    return metrics


def parse_params(values: tuple[str, ...]) -> dict[str, object]:
    """``--param lr=0.1``: a number, ``true``/``false``, ``null``, else the text as it is."""
    params: dict[str, object] = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", param_hint="--param")
        literals = {"true": True, "false": False, "null": None}
        params[key] = literals[text] if text in literals else text if (number := _number(text)) is None else number
    return params


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
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="Label the version (repeatable).")
@click.option(
    "--extra",
    "extras",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Store FILE (or a directory) beside the model, under extras/ (repeatable).",
)
@click.option("--metric", "metrics", multiple=True, metavar="NAME=NUMBER", help="Record how good the version is (repeatable).")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE", help="Record a setting that made it (repeatable).")
@common_options
@pass_cmdline
def upload(
    cmdline: CommandLine,
    domain: str,
    files: tuple[Path, ...],
    tags: tuple[str, ...],
    extras: tuple[Path, ...],
    metrics: tuple[str, ...],
    params: tuple[str, ...],
) -> None:
    """Store FILES (files or directories, as they are) as the next version of DOMAIN.

    `--metric auc=0.91` records a metric (a finite number), `--param lr=0.1` a param (a
    number, true/false, null, else the text): `modelstore compare` and `ls --where` use them.

    Prints the new version; when piped, stdout holds only its number:
    `v=$(modelstore upload churn model.onnx)`.
    """
    tag_dict = parse_tags(tags)
    metric_dict, param_dict = parse_metrics(metrics), parse_params(params)
    size = total_size([*files, *extras])
    store = cmdline.store()
    with progress(cmdline, f"Uploading {domain}", size) as callback:
        v = store.upload(
            domain, files=list(files), extras=list(extras), tags=tag_dict, metrics=metric_dict, params=param_dict, progress=callback
        )

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
    store = cmdline.store()
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
