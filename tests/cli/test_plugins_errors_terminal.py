"""`modelstore plugins`, one-line errors, and what a person at a terminal sees (tables, progress bars)."""

from __future__ import annotations

import json
import os

import pytest
from cli_helpers import REPO, fake_distribution, one_line_error

from modelstore_core import ModelStore


@pytest.fixture
def plugin_env(tmp_path) -> dict:
    """The example plugin installed as pip lays out a distribution, plus one that fails to import."""
    site = tmp_path / "site"
    fake_distribution(site, "modelstore-example", "modelstore_example:plugin")  # its pyproject.toml's entry point
    fake_distribution(site, "modelstore-broken", "modelstore_broken", "import modelstore_no_such_dependency\n", version="2.0")
    path = [str(site), str(REPO / "plugins" / "modelstore-example"), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in path if p)}


def test_plugins_json(cli, plugin_env):
    result = cli("plugins", "--json", env=plugin_env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # the failure is in the report, not repeated as a warning
    report = json.loads(result.stdout)
    by_name = {p["name"]: p for p in report["plugins"]}

    example = by_name["example"]
    assert (example["distribution"], example["version"], example["builtin"]) == ("modelstore-example", "0.1.0", False)
    assert example["hooks"] == [
        "modelstore_cli_commands",
        "modelstore_collect_metadata",
        "modelstore_deserialize",
        "modelstore_flavors",
        "modelstore_schemes",
        "modelstore_serialize",
        "modelstore_store",
        "modelstore_transport",
    ]
    assert (example["schemes"], example["flavors"], example["errors"]) == (["memory"], ["example"], [])
    assert example["commands"] == ["example-fit"]

    local = by_name["local_storage"]
    assert (local["distribution"], local["builtin"], local["schemes"]) == ("modelstore-core", True, ["file"])
    assert local["hooks"] == ["modelstore_schemes", "modelstore_store"]
    assert "raw_files" not in by_name  # raw files are the core's own, not a plugin
    assert {"git", "runtime", "dependencies"} <= by_name.keys()
    builtin = [p["builtin"] for p in report["plugins"]]
    assert builtin == sorted(builtin)  # third-party plugins first

    [failure] = report["failures"]
    assert failure["name"] == "broken"
    assert "modelstore_no_such_dependency" in failure["error"] and "ModuleNotFoundError" in failure["error"]


def test_plugins_piped_and_disabled(cli, plugin_env):
    result = cli("plugins", env={**plugin_env, "MODELSTORE_DISABLE_PLUGINS": "git,broken"})
    assert result.returncode == 0
    rows = {row[0]: row for row in result.lines}
    assert rows["example"][1:] == [
        "modelstore-example",
        "0.1.0",
        "modelstore_cli_commands,modelstore_collect_metadata,modelstore_deserialize,modelstore_flavors,modelstore_schemes,"
        "modelstore_serialize,modelstore_store,modelstore_transport",
        "memory",
        "example",
        "example-fit",
    ]
    assert "git" not in rows and result.stderr == ""
    assert json.loads(cli("plugins", "--json", env={"MODELSTORE_DISABLE_PLUGINS": "git"}).stdout)["disabled"] == ["git"]

    with_failure = cli("plugins", env=plugin_env)
    assert with_failure.stderr.startswith("warning: modelstore plugin 'broken' failed to load")
    assert len(with_failure.stderr.splitlines()) == 1


def test_a_plugin_that_fails_to_load_is_one_warning_line(cli, plugin_env, files):
    result = cli("upload", "d", files["model.bin"], env=plugin_env)
    assert result.returncode == 0 and result.stdout == "1\n"
    [warning] = result.stderr.splitlines()
    assert warning.startswith("warning: modelstore plugin 'broken' failed to load: ModuleNotFoundError")


def test_a_plugin_scheme_serves_the_store(cli, plugin_env, files):
    """The example plugin's `modelstore_store` opens memory:// stores; `modelstore_schemes` lists the scheme."""
    plugin_env = {**plugin_env, "MODELSTORE_DISABLE_PLUGINS": "broken"}
    uploaded = cli("upload", "d", files["model.bin"], "--store", "memory://cli-test", "--json", env=plugin_env)
    assert uploaded.returncode == 0, uploaded.stderr
    assert json.loads(uploaded.stdout)["version"] == 1  # stored in that process's memory
    assert cli.run("ls", "--store", "memory://cli-test", env=plugin_env).stdout == ""  # a new process: a new, empty store
    schemes = one_line_error(cli("ls", "--store", "nope://x", env=plugin_env)).split("available schemes: ")[1]
    assert {"file", "memory"} <= set(schemes.rstrip(")").split(", "))


def test_errors_are_one_line_without_traceback(cli, files, tmp_path):
    assert "s3x://" in one_line_error(cli.run("--store", "s3x://nope", "ls", script=True))
    error = one_line_error(cli("ls", "--store", "s3x://nope"))
    assert "available schemes: " in error and "file" in error.split("available schemes: ")[1]  # whatever else is installed
    cli.root.mkdir()  # an empty store (one that does not exist is another error)
    assert "domain 'nope' does not exist" in one_line_error(cli.run("ls", "nope", script=True))
    assert "`modelstore ls` lists the domains" in one_line_error(cli("info", "nope"))
    assert "domain 'nope' does not exist" in one_line_error(cli("download", "nope", "-o", tmp_path / "o"))
    assert not (tmp_path / "o").exists()
    assert "no such file or directory: " in one_line_error(cli("upload", "d", tmp_path / "missing.bin"))
    assert "invalid domain name '../up'" in one_line_error(cli("upload", "../up", files["model.bin"]))
    assert ModelStore(cli.root).list_domains() == []

    ModelStore(cli.root).upload("d", files=[files["model.bin"]])
    assert "`modelstore ls d` lists its versions" in one_line_error(cli("info", "d", "4"))
    assert "`modelstore state ls d` lists its states" in one_line_error(cli("download", "d", "--state", "prod"))
    assert "not both" in one_line_error(cli("info", "d", "1", "--state", "prod"))

    debug = cli("ls", "nope", "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "DomainNotFoundError" in debug.stderr

    usage = cli("upload", "d", files["model.bin"], "--tag", "novalue")
    assert usage.returncode == 2 and "KEY=VALUE" in usage.stderr and "Traceback" not in usage.stderr


def test_tables_on_a_terminal(cli, files):
    store = ModelStore(cli.root, cache_dir=cli.tmp / "api-cache")
    store.upload("churn", files=[files["model.bin"]], tags={"team": "risk"})
    store.set_state("churn", 1, "production")

    uploaded = cli.tty("upload", "churn", files["config.json"])
    assert uploaded.returncode == 0
    assert "Uploaded churn version 2 (1 file, 13 B)" in uploaded.stdout

    domains = cli.tty("ls")
    assert "┃ domain" in domains.stdout and "│ churn" in domains.stdout

    versions = cli.tty("ls", "churn")
    header = next(line for line in versions.stdout.splitlines() if "version" in line and "┃" in line)
    assert [h.strip() for h in header.strip("┃ ").split("┃")] == ["version", "created", "flavor", "size", "states", "git", "tags"]
    assert "production" in versions.stdout and "team=risk" in versions.stdout and "5.0 kB" in versions.stdout

    info = cli.tty("info", "churn", "1")
    assert "production" in info.stdout and "model.bin" in info.stdout and "modelstore-core" in info.stdout
    assert not info.stdout.lstrip().startswith("{")

    plugins = cli.tty("plugins")
    assert "local_storage" in plugins.stdout and "schemes: file://" in plugins.stdout and "(builtin)" in plugins.stdout


def test_progress_bars_only_on_a_terminal(cli, tmp_path):
    big = tmp_path / "weights.bin"
    big.write_bytes(os.urandom(9 * 1000 * 1000))

    piped = cli("upload", "big", big)
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "1\n", "")

    terminal = cli.tty("upload", "big", big, "--tag", "run=2")
    assert terminal.returncode == 0
    assert "Uploading big" in terminal.stdout and "MB" in terminal.stdout
    assert "Uploaded big version 2" in terminal.stdout

    downloaded = cli.tty("download", "big", "-o", tmp_path / "out")
    assert downloaded.returncode == 0
    assert "Downloading big v2" in downloaded.stdout
    assert (tmp_path / "out" / "weights.bin").read_bytes() == big.read_bytes()

    piped_download = cli("download", "big", "-o", tmp_path / "out2")
    assert (piped_download.stdout, piped_download.stderr) == (f"{tmp_path / 'out2'}\n", "")
