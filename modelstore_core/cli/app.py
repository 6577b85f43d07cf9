"""The ``modelstore`` command group, its shared options and its error handling."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable

import click

from ..errors import install_hint
from ..plugins import KNOWN_PLUGINS, get_plugins
from .context import CLIError, CommandLine, describe_error


def plugin_commands(group: click.Group) -> dict[str, click.Command]:
    """The commands plugins add, by name. Each plugin's implementation is called on its own, so one
    that raises or returns something else than commands is reported (a warning) without hiding
    the others; a name ``group`` already has, or that a plugin called earlier took, is skipped likewise."""
    plugins = get_plugins()
    impls = plugins.hook.modelstore_cli_commands.get_hookimpls()
    found: dict[str, click.Command] = {}
    for impl in reversed(impls):  # call order: pluggy's precedence
        # Through pluggy (traced with MODELSTORE_TRACE), one plugin at a time.
        only = plugins.manager.subset_hook_caller("modelstore_cli_commands", [i.plugin for i in impls if i is not impl])
        try:
            commands = [command for result in only() for command in result or ()]
        except Exception as exc:  # noqa: BLE001 - reported, a broken plugin must not hide the others
            warnings.warn(
                f"plugin {impl.plugin_name!r}: modelstore_cli_commands raised {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2
            )
            continue
        for command in commands:
            if not isinstance(command, click.Command) or not command.name:
                warnings.warn(
                    f"plugin {impl.plugin_name!r}: modelstore_cli_commands returned {command!r}, not a named click command",
                    RuntimeWarning,
                    stacklevel=2,
                )
            elif command.name in group.commands or command.name in found:
                warnings.warn(
                    f"plugin {impl.plugin_name!r}: command {command.name!r} is taken; its own is ignored", RuntimeWarning, stacklevel=2
                )
            else:
                found[command.name] = command
    return found


def _set(attr: str) -> Callable:
    def callback(ctx: click.Context, param: click.Parameter, value):
        if value not in (None, False):
            setattr(ctx.ensure_object(CommandLine), attr, value)
        return value

    return callback


def common_options(f: Callable) -> Callable:
    """``--store``, ``--timeout``, ``--json`` and ``--debug``, accepted before or after the command name."""
    f = click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        expose_value=False,
        callback=_set("timeout"),
        help="Give up on a storage operation after this long, retries included (remote stores).",
    )(f)
    f = click.option("--debug", is_flag=True, expose_value=False, callback=_set("debug"), help="Show tracebacks.")(f)
    f = click.option("--json", "json_", is_flag=True, expose_value=False, callback=_set("json"), help="Print JSON (for scripts).")(f)
    f = click.option(
        "--store",
        metavar="URL",
        expose_value=False,
        callback=_set("store_url"),
        help="Store URL or path (default: $MODELSTORE_URL, else the per-user store).",
    )(f)
    return f


class ModelStoreGroup(click.Group):
    """Turns every error into one line on stderr and a non-zero exit (a traceback only with ``--debug``),
    and adds the commands of plugins (``modelstore_cli_commands``), looked up only for a name the core
    does not have, and for ``--help``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *plugin_commands(self)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        command = plugin_commands(self).get(cmd_name)
        if command is None and (distribution := KNOWN_PLUGINS["command"].get(cmd_name)):
            ctx.fail(f"`modelstore {cmd_name}` comes with the {distribution} plugin: {install_hint(distribution)}")
        return command

    def invoke(self, ctx: click.Context):
        cmdline = ctx.ensure_object(CommandLine)
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort, BrokenPipeError):
            raise
        except Exception as exc:
            if cmdline.debug:
                raise
            raise CLIError(describe_error(exc, cmdline.opened_store)) from None
        finally:
            cmdline.close()


@click.group(cls=ModelStoreGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelstore-core", prog_name="modelstore")
@common_options
def cli() -> None:
    """Store, version and inspect models in a modelstore.

    Output is a table on a terminal, tab-separated lines (no header) when piped, and JSON
    with --json. The store is --store URL, else $MODELSTORE_URL, else a per-user directory.
    """


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {' '.join(str(message).split())}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``modelstore`` console script and of ``python -m modelstore_core``."""
    if "--debug" not in (argv if argv is not None else sys.argv[1:]):
        warnings.showwarning = _one_line_warning
    try:
        cli.main(args=argv, prog_name="modelstore")
    except BrokenPipeError:
        # The reader went away (`modelstore ls | head`): exit quietly, as coreutils do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
