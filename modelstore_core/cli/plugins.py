"""``modelstore plugins``: what is installed, what each plugin implements and provides, what failed."""

from __future__ import annotations

import os
import warnings
from typing import Any

import click

from ..plugins import DEFAULT_PLUGINS, Plugins, distribution_version, get_plugins
from .app import cli, common_options
from .context import CommandLine, escape, pass_cmdline

_BUILTINS = {name.rsplit(".", 1)[1] for name in DEFAULT_PLUGINS}


def _provided(plugins: Plugins, plugin: object, hook: str, label=str) -> tuple[list[str], str | None]:
    """What ``plugin``'s own implementation of a no-argument listing hook returns, each item shown
    as ``label(item)`` (and its error, if it raised)."""
    caller = getattr(plugins.hook, hook)
    found: list[str] = []
    for impl in caller.get_hookimpls():
        if impl.plugin is not plugin:
            continue
        try:
            found.extend(label(x) for x in impl.function() or ())
        except Exception as exc:  # noqa: BLE001 - reported, a broken plugin must not hide the others
            return found, f"{hook} raised {type(exc).__name__}: {exc}"
    return sorted(found), None


def describe_plugins(plugins: Plugins) -> dict[str, Any]:
    """Every registered plugin (builtins included) with its distribution, hooks, schemes and flavors,
    plus the plugins that failed to import and those disabled by ``MODELSTORE_DISABLE_PLUGINS``."""
    pm = plugins.manager
    core_version = distribution_version("modelstore-core")
    described = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:
            continue  # blocked
        builtin = name in _BUILTINS and getattr(plugin, "__name__", "").startswith("modelstore_core.")
        dist, version = plugins.distributions.get(name, ("modelstore-core", core_version) if builtin else (None, None))
        hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
        errors = []
        schemes, err = _provided(plugins, plugin, "modelstore_schemes")
        errors += [err] if err else []
        flavors, err = _provided(plugins, plugin, "modelstore_flavors")
        errors += [err] if err else []
        commands, err = _provided(plugins, plugin, "modelstore_cli_commands", lambda c: str(getattr(c, "name", None) or c))
        errors += [err] if err else []
        described.append(
            {
                "name": name,
                "distribution": dist,
                "version": version,
                "builtin": builtin,
                "module": getattr(plugin, "__name__", None) or type(plugin).__module__,
                "hooks": hooks,
                "schemes": schemes,
                "flavors": flavors,
                "commands": commands,
                "errors": errors,
            }
        )
    # Third-party plugins first: they are the ones people ask about.
    described.sort(key=lambda p: (p["builtin"], p["name"]))
    disabled = sorted({n.strip() for n in os.environ.get("MODELSTORE_DISABLE_PLUGINS", "").split(",") if n.strip()})
    return {
        "plugins": described,
        "failures": [{"name": name, "error": str(error)} for name, error in sorted(plugins.failures.items())],
        "disabled": disabled,
    }


@cli.command("plugins")
@common_options
@pass_cmdline
def plugins_command(cmdline: CommandLine) -> None:
    """Installed plugins: distribution and version, hooks implemented, URL schemes, flavors and
    commands provided; plugins that failed to import, with their error.

    \b
    Piped columns: plugin, distribution, version, hooks, schemes, flavors, commands
    (failures go to stderr as `warning:` lines).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # failures are reported below, not as warnings
        report = describe_plugins(get_plugins())

    if cmdline.mode == "json":
        cmdline.emit_json(report)
        return
    if cmdline.mode == "plain":
        cmdline.emit_rows(
            [[p["name"], p["distribution"], p["version"], p["hooks"], p["schemes"], p["flavors"], p["commands"]] for p in report["plugins"]]
        )
        for failure in report["failures"]:
            click.echo(f"warning: {failure['error']}", err=True)
        for p in report["plugins"]:
            for error in p["errors"]:
                click.echo(f"warning: plugin {p['name']!r}: {error}", err=True)
        return

    from rich.table import Table

    table = Table(header_style="bold")
    table.add_column("plugin", style="bold")
    table.add_column("distribution")
    table.add_column("hooks")
    table.add_column("provides")
    for p in report["plugins"]:
        dist = f"{escape(p['distribution'] or '?')} {escape(p['version'] or '')}".strip()
        if p["builtin"]:
            dist += " [dim](builtin)[/]"
        provides = []
        if p["schemes"]:
            provides.append(escape("schemes: " + ", ".join(f"{s}://" for s in p["schemes"])))
        if p["flavors"]:
            provides.append(escape("flavors: " + ", ".join(p["flavors"])))
        if p["commands"]:
            provides.append(escape("commands: " + ", ".join(p["commands"])))
        provides += [f"[red]{escape(e)}[/]" for e in p["errors"]]
        hooks = "\n".join(escape(h.removeprefix("modelstore_")) for h in p["hooks"])  # the names escaped, not the layout
        table.add_row(escape(p["name"]), dist, hooks, "\n".join(provides))
    cmdline.console.print(table)
    for failure in report["failures"]:
        cmdline.console.print(f"[red]✗ {escape(failure['name'])}[/]: {escape(failure['error'])}")
    if report["disabled"]:
        cmdline.console.print(f"[dim]disabled by MODELSTORE_DISABLE_PLUGINS: {escape(', '.join(report['disabled']))}[/]")
