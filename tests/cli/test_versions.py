"""upload, ls, info, download, state and delete, piped and as JSON (in-process, except where the
console script, a terminal or a real non-terminal stdin is the point)."""

from __future__ import annotations

import json
from datetime import datetime

from cli_helpers import git, git_repo, one_line_error

from modelstore_core import ModelStore


def api(cli) -> ModelStore:
    return ModelStore(cli.root, cache_dir=cli.tmp / "api-cache")


def test_console_script_and_module_are_the_same_command(cli):
    for script in (True, False):
        result = cli.run("--version", script=script)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "modelstore, version 0.1.0"
        help_ = cli.run("--help", script=script)
        assert help_.returncode == 0
        for command in ("ls", "info", "upload", "download", "state", "delete", "verify", "gc", "diff", "plugins"):
            assert f"\n  {command} " in help_.stdout


def test_upload_prints_only_the_version_number_when_piped(cli, files):
    first = cli.run(
        "upload",
        "churn",
        files["model.bin"],
        files["config.json"],
        "--tag",
        "team=risk",
        "--tag",
        "data=v2",
        "--extra",
        files["notes.txt"],
        script=True,
    )
    assert (first.returncode, first.stdout, first.stderr) == (0, "1\n", "")
    second = cli("upload", "churn", files["model.bin"])
    assert (second.returncode, second.stdout) == (0, "2\n")

    v1 = api(cli).info("churn", 1)
    assert v1.tags == {"team": "risk", "data": "v2"}
    assert sorted(f.path for f in v1.files) == ["config.json", "extras/notes.txt", "model.bin"]
    assert api(cli).load("churn", version=1)[0].read_bytes() in {p.read_bytes() for p in files.values()}


def test_upload_json_is_the_committed_record(cli, files):
    result = cli("upload", "churn", files["model.bin"], "--json", "--tag", "k=v")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record == api(cli).info("churn", 1).metadata
    assert record["tags"] == {"k": "v"} and record["version"] == 1


def test_store_option_before_or_after_the_command_and_env(cli, files, tmp_path):
    other = tmp_path / "other-store"
    assert cli("--store", other, "upload", "a", files["model.bin"]).stdout == "1\n"
    assert cli("upload", "b", files["model.bin"], "--store", other).stdout == "1\n"
    assert [row[0] for row in cli("ls", "--store", other).lines] == ["a", "b"]
    assert "does not exist" in cli("ls").stderr  # $MODELSTORE_URL's store is not there yet
    assert ModelStore(other).list_domains() == ["a", "b"]


def test_ls_domains_and_versions(cli, files, tmp_path):
    repo = git_repo(tmp_path / "repo")
    commit = git(repo, "rev-parse", "HEAD")
    assert cli("upload", "churn", files["model.bin"], "--tag", "team=risk", cwd=repo).returncode == 0
    (repo / "train.py").write_text("print('changed')\n")  # uncommitted change: dirty
    assert cli("upload", "churn", files["config.json"], cwd=repo).returncode == 0
    assert cli("upload", "fraud", files["notes.txt"]).returncode == 0  # outside any repository
    assert cli("state", "set", "churn", "1", "production").returncode == 0
    assert cli("state", "set", "churn", "1", "canary").returncode == 0

    domains = cli("ls")
    assert domains.returncode == 0
    assert [row[:3] for row in domains.lines] == [["churn", "2", "2"], ["fraud", "1", "1"]]
    datetime.fromisoformat(domains.lines[0][3])
    assert [(d["domain"], d["versions"], d["latest"]) for d in json.loads(cli("ls", "--json").stdout)] == [("churn", 2, 2), ("fraud", 1, 1)]

    versions = cli("ls", "churn")
    assert versions.returncode == 0
    (v2, v1) = versions.lines
    assert v2[0] == "2" and v2[2] == "files" and v2[3] == str(files["config.json"].stat().st_size)
    assert v2[4:7] == ["", commit, "true"]
    assert v1[0] == "1" and v1[4:] == ["canary,production", commit, "false", "team=risk", "", ""]  # no metrics, no params
    assert datetime.fromisoformat(v1[1]) < datetime.fromisoformat(v2[1])

    rows = json.loads(cli("ls", "churn", "--json").stdout)
    assert [(r["version"], r["states"], r["git_commit"], r["git_dirty"], r["tags"], r["files"]) for r in rows] == [
        (2, [], commit, True, {}, 1),
        (1, ["canary", "production"], commit, False, {"team": "risk"}, 1),
    ]
    assert [r["version"] for r in json.loads(cli("ls", "churn", "--json", "-n", "1").stdout)] == [2]
    assert json.loads(cli("ls", "fraud", "--json").stdout)[0]["git_commit"] is None


def test_ls_of_many_versions_fetches_every_record(cli, files):
    store = api(cli)
    for i in range(40):
        store.upload("many", files=[files["model.bin"]], tags={"i": str(i)})
    rows = json.loads(cli("ls", "many", "--json").stdout)
    assert [r["version"] for r in rows] == list(range(40, 0, -1))
    assert [r["tags"]["i"] for r in rows] == [str(i) for i in range(39, -1, -1)]


def test_info_prints_the_full_record(cli, files):
    store = api(cli)
    store.upload("churn", files=[files["model.bin"]], tags={"a": "1"})
    store.upload("churn", files=[files["config.json"]])
    store.set_state("churn", 1, "production")

    latest = cli("info", "churn")  # piped: JSON too
    assert latest.returncode == 0
    assert json.loads(latest.stdout) == store.info("churn", 2).metadata
    assert json.loads(cli("info", "churn", "1", "--json").stdout) == store.info("churn", 1).metadata
    assert json.loads(cli("info", "churn", "--state", "production").stdout)["version"] == 1


def test_download(cli, files, tmp_path):
    store = api(cli)
    store.upload("churn", files=[files["model.bin"]], extras=[files["notes.txt"]])
    store.upload("churn", files=[files["config.json"]])
    store.set_state("churn", 1, "production")

    default = cli("download", "churn")  # latest, into ./churn-2 of the working directory
    assert default.returncode == 0, default.stderr
    assert default.stdout == f"{tmp_path / 'churn-2'}\n"
    assert (tmp_path / "churn-2" / "config.json").read_bytes() == files["config.json"].read_bytes()

    out = tmp_path / "out"
    by_state = cli("download", "churn", "--state", "production", "-o", out, "--json")
    assert by_state.returncode == 0, by_state.stderr
    assert json.loads(by_state.stdout) == {
        "domain": "churn",
        "version": 1,
        "path": str(out),
        "files": ["model.bin", "extras/notes.txt"],
        "size": 5000 + len(b"trained on v2 data"),
    }
    assert (out / "model.bin").read_bytes() == files["model.bin"].read_bytes()
    assert (out / "extras" / "notes.txt").read_bytes() == files["notes.txt"].read_bytes()


def test_states(cli, files):
    store = api(cli)
    for _ in range(3):
        store.upload("churn", files=[files["model.bin"]])

    assert cli("state", "set", "churn", "2", "production").returncode == 0
    moved = cli("state", "set", "churn", "3", "production", "--json")
    assert json.loads(moved.stdout) == {"domain": "churn", "state": "production", "version": 3, "previous": 2}
    assert cli("state", "set", "churn", "1", "staging").returncode == 0
    assert cli("state", "ls", "churn").lines == [["production", "3"], ["staging", "1"]]
    assert json.loads(cli("state", "ls", "churn", "--json").stdout) == {"production": 3, "staging": 1}

    removed = cli("state", "rm", "churn", "staging")
    assert removed.returncode == 0 and removed.stdout == ""
    assert store.states("churn") == {"production": 3}
    assert "no state 'staging'" in one_line_error(cli("state", "rm", "churn", "staging"))
    assert "version 9 of domain 'churn' does not exist" in one_line_error(cli("state", "set", "churn", "9", "x"))


def test_delete_refuses_without_yes_when_stdin_is_not_a_terminal(cli, files):
    store = api(cli)
    store.upload("churn", files=[files["model.bin"]])
    store.upload("churn", files=[files["config.json"]])
    store.set_state("churn", 2, "production")

    error = one_line_error(cli.run("delete", "churn", "2"))  # a real process, stdin /dev/null
    assert "--yes" in error
    assert [v.version for v in store.list_versions("churn")] == [2, 1]

    deleted = cli("delete", "churn", "2", "--yes", "--json")
    assert deleted.returncode == 0, deleted.stderr
    assert json.loads(deleted.stdout) == {"domain": "churn", "version": 2, "deleted": True, "states_removed": ["production"]}
    assert [v.version for v in store.list_versions("churn")] == [1]
    assert store.states("churn") == {}
    assert "version 2 of domain 'churn' does not exist" in one_line_error(cli("delete", "churn", "2", "--yes"))


def test_delete_asks_on_a_terminal(cli, files):
    store = api(cli)
    store.upload("churn", files=[files["model.bin"]])
    store.upload("churn", files=[files["config.json"]])

    declined = cli.tty("delete", "churn", "2", answer="n")
    assert declined.returncode == 1
    assert "Delete version 2 of 'churn'" in declined.stdout and "Aborted" in declined.stdout
    assert store.latest("churn").version == 2

    accepted = cli.tty("delete", "churn", "2", answer="y")
    assert accepted.returncode == 0, accepted.stdout
    assert "Deleted churn version 2" in accepted.stdout
    assert store.latest("churn").version == 1
