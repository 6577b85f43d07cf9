"""Commands that plugins add to the command line (``modelstore_cli_commands``)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import fake_distribution, one_line_error

HELLO = '''
import click

from modelstore_core.cli import CLIError, common_options, pass_cmdline
from modelstore_core.plugin_api import hookimpl


@click.command("hello")
@click.argument("domain")
@common_options
@pass_cmdline
def hello(cmdline, domain):
    """Say how many versions DOMAIN has."""
    versions = cmdline.store().list_versions(domain)
    if not versions:
        raise CLIError(f"{domain} is empty")
    if cmdline.mode == "json":
        cmdline.emit_json({"domain": domain, "versions": len(versions)})
    else:
        click.echo(f"{domain} has {len(versions)}")


@hookimpl
def modelstore_cli_commands():
    return [hello]
'''

SHADOW = '''
import click

from modelstore_core.plugin_api import hookimpl


@click.command("ls")
def not_ls():
    """Would hide the builtin `ls`."""
    click.echo("not the builtin ls")


@hookimpl
def modelstore_cli_commands():
    return [not_ls]
'''

BROKEN = """
from modelstore_core.plugin_api import hookimpl


@hookimpl
def modelstore_cli_commands():
    raise RuntimeError("no commands today")
"""

NOT_COMMANDS = """
from modelstore_core.plugin_api import hookimpl


@hookimpl
def modelstore_cli_commands():
    return ["hello-string"]
"""


@pytest.fixture
def plugin_env(tmp_path) -> dict:
    site = tmp_path / "site"
    fake_distribution(site, "modelstore-hello", "modelstore_hello", HELLO)
    fake_distribution(site, "modelstore-broken", "modelstore_broken", BROKEN)
    fake_distribution(site, "modelstore-strings", "modelstore_strings", NOT_COMMANDS)
    fake_distribution(site, "modelstore-shadow", "modelstore_shadow", SHADOW)
    return {"PYTHONPATH": str(site)}


def test_a_plugins_command_runs_with_the_shared_options(cli, plugin_env, files):
    assert cli("upload", "churn", files["model.bin"]).returncode == 0
    result = cli("hello", "churn", env=plugin_env)
    assert (result.returncode, result.stdout) == (0, "churn has 1\n")
    # --store and --json, before or after the command's name, as for the builtins
    result = cli("--json", "hello", "churn", "--store", cli.root, env=plugin_env)
    assert json.loads(result.stdout) == {"domain": "churn", "versions": 1}
    # its errors are one line, like the builtins'
    assert one_line_error(cli("hello", "nothing", env={**plugin_env, "MODELSTORE_DISABLE_PLUGINS": "broken,strings,shadow"})) == (
        "Error: domain 'nothing' does not exist in this store; `modelstore ls` lists the domains"
    )


def test_help_lists_plugin_commands_and_reports_broken_ones(cli, plugin_env):
    result = cli("--help", env=plugin_env)
    assert result.returncode == 0
    assert "hello" in result.stdout and "Say how many versions" in result.stdout
    warnings = result.stderr.splitlines()
    assert "warning: plugin 'broken': modelstore_cli_commands raised RuntimeError: no commands today" in warnings
    assert "warning: plugin 'strings': modelstore_cli_commands returned 'hello-string', not a named click command" in warnings
    assert "warning: plugin 'shadow': command 'ls' is taken; its own is ignored" in warnings


def test_a_plugin_cannot_replace_a_builtin_command(cli, plugin_env, files):
    assert cli("upload", "churn", files["model.bin"]).returncode == 0
    result = cli("ls", env=plugin_env)
    assert result.returncode == 0
    assert "not the builtin ls" not in result.stdout and result.stdout.startswith("churn\t1\t1\t")
    assert result.stderr == ""  # a builtin name never even asks the plugins


def test_disabled_plugin_commands_are_gone(cli, plugin_env):
    result = cli("hello", "churn", env={**plugin_env, "MODELSTORE_DISABLE_PLUGINS": "hello"})
    assert result.returncode == 2 and "No such command 'hello'" in result.stderr


def test_serve_without_its_plugin_names_what_to_install(cli):
    result = cli("serve", env={"MODELSTORE_DISABLE_PLUGINS": "web"})
    assert result.returncode == 2
    assert (
        "Error: `modelstore serve` comes with the modelstore-web plugin: run `pip install modelstore-web`"
        " (from a modelstore checkout: `pip install -e plugins/modelstore-web`)"
    ) in result.stderr


NOISY = """
from modelstore_core.plugin_api import hookimpl


@hookimpl
def modelstore_flavors():
    raise RuntimeError("first line\\nsecond line \\x1b[31mred")
"""


def test_plugins_on_a_terminal_escape_what_plugins_say_not_the_table_layout(cli, tmp_path):
    site = tmp_path / "noisy-site"
    fake_distribution(site, "modelstore-noisy", "modelstore_noisy", NOISY)
    shown = cli.tty("plugins", env={"PYTHONPATH": str(site)})
    assert shown.returncode == 0, shown.stdout
    # The hooks column holds one hook a line, as the table lays them out.
    hooks = [line.split("│")[3].strip() for line in shown.stdout.splitlines() if line.count("│") == 5]
    at = hooks.index("schemes")  # local_storage's hooks
    assert hooks[at : at + 2] == ["schemes", "store"]
    # What a plugin says (here its error) is escaped: its newline and escape sequence are text.
    assert "first line\\x0asecond line \\x1b[31mred" in shown.stdout
    assert shown.stdout.count("\\x0a") == 1
