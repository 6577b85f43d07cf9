"""``modelstore example-fit``: the command this plugin adds to the command line (``modelstore_cli_commands``)."""

from __future__ import annotations

import click

from modelstore_core.cli import CommandLine, common_options, pass_cmdline

from .model import TinyLinearModel


@click.command("example-fit")
@click.argument("domain")
@click.option("--l2", type=float, default=0.0, show_default=True, help="The ridge penalty.")
@common_options  # --store, --timeout, --json, --debug, as every modelstore command takes them
@pass_cmdline  # the run's CommandLine: the store those options name, and how to print
def example_fit(cmdline: CommandLine, domain: str, l2: float) -> None:
    """Fit a TinyLinearModel on four points and store it as the next version of DOMAIN."""
    model = TinyLinearModel(l2=l2).fit([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]], [1.0, 2.0, 5.0, 6.5])
    version = cmdline.store().upload(domain, model=model)
    if cmdline.mode == "json":
        cmdline.emit_json({"domain": domain, "version": version.version})
    else:
        click.echo(version.version)
