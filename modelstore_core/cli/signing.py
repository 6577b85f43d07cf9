"""Signing: ``keys create``/``keys ls`` (keys on this machine) and ``sign`` (a version of a store)."""

from __future__ import annotations

import click

from .app import cli, common_options
from .browse import version_option
from .context import CommandLine, escape, pass_cmdline


@cli.group("keys")
def keys_group() -> None:
    """Signing keys on this machine (ECDSA P-256 PEM files in the per-user config directory)."""


@keys_group.command("create")
@click.argument("name")
@common_options
@pass_cmdline
def keys_create(cmdline: CommandLine, name: str) -> None:
    """Make a new signing key NAME: the private key (mode 0600) and its public key.

    Prints the public key's path (piped: public key path, key id). Hand the public key to those
    who load your models (trusted_keys= or $MODELSTORE_TRUSTED_KEYS); sign with
    --key NAME, or set $MODELSTORE_SIGNING_KEY to the private key's path to sign every upload.
    """
    from ..signing import create_key

    private, public, kid = create_key(name)
    if cmdline.mode == "json":
        cmdline.emit_json({"name": name, "keyid": kid, "public_key": str(public), "private_key": str(private)})
    elif cmdline.mode == "plain":
        cmdline.emit_rows([[public, kid]])
    else:
        cmdline.console.print(
            f"Created key [bold]{escape(name)}[/] (key id {kid})\n"
            f"  public key:  {escape(public)}  [dim](share it: readers trust it)[/]\n"
            f"  private key: {escape(private)}  [dim](mode 0600; never share it)[/]"
        )


@keys_group.command("ls")
@common_options
@pass_cmdline
def keys_ls(cmdline: CommandLine) -> None:
    """The keys made by `modelstore keys create` (piped columns: name, key id, public key path)."""
    from ..signing import keys_dir, list_keys

    found = list_keys()
    if cmdline.mode == "json":
        cmdline.emit_json(found)
    elif cmdline.mode == "plain":
        cmdline.emit_rows([[k["name"], k["keyid"], k["public_key"]] for k in found])
    elif not found:
        cmdline.note(f"No keys in {escape(keys_dir())}; `modelstore keys create NAME` makes one.")
    else:
        from rich.table import Table

        table = Table(title=escape(keys_dir()), title_justify="left", header_style="bold")
        for column in ("name", "key id", "public key"):
            table.add_column(column)
        for k in found:
            table.add_row(escape(k["name"]), escape(k["keyid"]), escape(k["public_key"]))
        cmdline.console.print(table)


@cli.command()
@click.argument("domain")
@version_option
@click.option(
    "--key",
    metavar="PATH|NAME",
    help="Private key: a PEM file, or a key made by `modelstore keys create` (default: $MODELSTORE_SIGNING_KEY).",
)
@common_options
@pass_cmdline
def sign(cmdline: CommandLine, domain: str, version: int | None, state_name: str | None, key: str | None) -> None:
    """Sign a version of DOMAIN (latest by default) as it is now; other signatures stay.

    Piped: the key id of the signature.
    """
    store = cmdline.store()
    v = store.resolve(domain, version, state_name).version
    info = store.sign(domain, v, key=key)
    if cmdline.mode == "json":
        cmdline.emit_json({"domain": domain, "version": v, "keyid": info.keyid, "signed": info.signed})
    elif cmdline.mode == "plain":
        click.echo(info.keyid)
    else:
        cmdline.console.print(f"Signed [bold]{escape(domain)}[/] version [bold green]{v}[/] with key {info.keyid}")
