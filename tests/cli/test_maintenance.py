"""verify, gc, diff and cache, in-process (diff on a terminal through the real command)."""

from __future__ import annotations

import json

import pytest
from cli_helpers import git, git_repo

from modelstore_core import ModelStore, hookimpl
from modelstore_core.plugins import get_plugins
from modelstore_core.protocol import keys


def api(cli) -> ModelStore:
    return ModelStore(cli.root, cache_dir=cli.tmp / "api-cache")


def corrupt(cli, sha256: str) -> None:
    path = cli.root / keys.object_key(sha256)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_verify(cli, files):
    store = api(cli)
    v1 = store.upload("churn", files=[files["model.bin"]])
    store.upload("churn", files=[files["config.json"]])
    store.upload("fraud", files=[files["notes.txt"]])

    ok = cli("verify")
    assert (ok.returncode, ok.stdout) == (0, "")
    assert ok.stderr.startswith("OK: verified 3 versions, 3 files")
    assert json.loads(cli("verify", "churn", "--json").stdout)["versions"] == 2

    corrupt(cli, v1.files[0].sha256)
    bad = cli("verify")
    assert bad.returncode == 1
    assert bad.lines == [["churn", "1", "model.bin", "corrupted"]]
    assert "1 problem" in bad.stderr and "Traceback" not in bad.stderr
    report = json.loads(cli("verify", "churn", "1", "--json").stdout)
    assert report["ok"] is False and report["versions"] == 1
    [problem] = report["problems"]
    assert problem.items() >= {"domain": "churn", "version": 1, "file": "model.bin", "problem": "corrupted", "repaired": ""}.items()
    assert cli("verify", "churn", "2").returncode == 0  # only the named version is checked
    assert cli("verify", "fraud").returncode == 0


def test_gc_is_a_dry_run_unless_applied(cli, files):
    store = api(cli)
    store.upload("churn", files=[files["model.bin"]])
    v2 = store.upload("churn", files=[files["config.json"]])
    store.delete("churn", 2)
    orphan = keys.object_key(v2.files[0].sha256)

    dry = cli("gc")
    assert dry.returncode == 0
    assert dry.lines == [[orphan]]
    assert "Would remove 1 unreferenced object" in dry.stderr and "--apply" in dry.stderr
    assert (cli.root / orphan).is_file()

    applied = cli("gc", "--apply", "--json")
    assert applied.returncode == 0, applied.stderr
    report = json.loads(applied.stdout)
    assert report["dry_run"] is False and report["objects"] == [orphan]
    assert report["bytes"] == files["config.json"].stat().st_size
    assert not (cli.root / orphan).exists()
    assert cli("gc", "--yes").stderr.startswith("Nothing to collect")
    assert store.load("churn", version=1)[0].read_bytes() == files["model.bin"].read_bytes()


class Hyperparameters:
    """A throwaway plugin: records the hyperparameters the test sets."""

    def __init__(self):
        self.params: dict = {}

    @hookimpl
    def modelstore_collect_metadata(self, model, flavor, domain):
        return {"model": {"framework": "test", "hyperparameters": dict(self.params)}}


@pytest.fixture
def hyperparameters():
    plugin = Hyperparameters()
    manager = get_plugins().manager
    manager.register(plugin, name="test-hyperparameters")
    yield plugin
    manager.unregister(plugin)


def test_diff(cli, files, tmp_path, hyperparameters, monkeypatch):
    store = api(cli)
    repo = git_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)  # the git collector reads the working directory
    first_commit = git(repo, "rev-parse", "HEAD")

    hyperparameters.params = {"max_depth": 3, "eta": 0.1, "objective": "binary"}
    store.upload("churn", files=[files["model.bin"], files["config.json"]], tags={"team": "risk", "data": "v1"})
    (repo / "train.py").write_text("print('better')\n")
    git(repo, "commit", "-qam", "second")
    second_commit = git(repo, "rev-parse", "HEAD")
    files["config.json"].write_text('{"layers": 4}')
    hyperparameters.params = {"max_depth": 5, "eta": 0.1, "subsample": 0.8}
    store.upload("churn", files=[files["model.bin"], files["config.json"], files["notes.txt"]], tags={"team": "risk", "data": "v2"})

    result = json.loads(cli("diff", "churn", "1", "2", "--json").stdout)
    assert (result["domain"], result["from"], result["to"]) == ("churn", 1, 2)
    assert [f["path"] for f in result["files"]["added"]] == ["notes.txt"]
    assert result["files"]["removed"] == []
    [changed] = result["files"]["changed"]
    assert changed["path"] == "config.json" and changed["old"]["sha256"] != changed["new"]["sha256"]
    assert result["files"]["unchanged"] == 1
    # The hyperparameters once, as the params they make (model.hyperparameters restates them).
    assert result["sections"]["params"] == [
        {"key": "params.max_depth", "change": "changed", "old": 3, "new": 5},
        {"key": "params.objective", "change": "removed", "old": "binary"},
        {"key": "params.subsample", "change": "added", "new": 0.8},
    ]
    assert "model" not in result["sections"] and result["hidden"] == 3
    assert result["sections"]["git"] == [{"key": "git.commit", "change": "changed", "old": first_commit, "new": second_commit}]
    assert result["sections"]["tags"] == [{"key": "tags.data", "change": "changed", "old": "v1", "new": "v2"}]
    assert "dependencies" not in result["sections"] and "runtime" not in result["sections"]

    plain = cli("diff", "churn", "1", "2")
    assert plain.returncode == 0
    assert ["changed", "files", "config.json", changed["old"]["sha256"], changed["new"]["sha256"]] in plain.lines
    assert ["changed", "params", "params.max_depth", "3", "5"] in plain.lines
    assert ["added", "files", "notes.txt", "", result["files"]["added"][0]["sha256"]] in plain.lines

    terminal = cli.tty("diff", "churn", "1", "2")
    assert terminal.returncode == 0
    assert "churn: version 1 → 2" in terminal.stdout
    assert "~ max_depth: 3 → 5" in terminal.stdout and "hyperparameters" not in terminal.stdout
    assert "+ notes.txt" in terminal.stdout

    same = json.loads(cli("diff", "churn", "2", "2", "--json").stdout)
    assert same["sections"] == {} and same["files"]["unchanged"] == 3
    assert "version 7 of domain 'churn' does not exist" in cli("diff", "churn", "1", "7").stderr


def test_cache_info_and_clear(cli, files):
    api(cli).upload("churn", files=[files["model.bin"]])
    assert cli("download", "churn", "-o", str(cli.tmp / "out")).returncode == 0
    cache = ModelStore(cli.root, cache_dir=cli.tmp / "cli-cache")
    cache.load("churn")  # a verified view in the CLI's cache
    path, n, size = cli("cache", "info").lines[0]
    assert path == str(cli.tmp / "cli-cache") and int(n) >= 1 and int(size) >= files["model.bin"].stat().st_size

    refused = cli("cache", "clear")  # stdin is not a terminal
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert json.loads(cli("cache", "clear", "--yes", "--json").stdout)["bytes"] == int(size)
    assert cli("cache", "info").lines[0][1:] == ["0", "0"]
    [loaded] = cache.load("churn")  # fetched and verified again
    assert loaded.read_bytes() == files["model.bin"].read_bytes()


def test_cache_clear_refuses_a_directory_that_is_not_a_cache(cli, files):
    """$MODELSTORE_CACHE_DIR set to the store (objects/ there too) or a project directory: nothing is deleted."""
    api(cli).upload("churn", files=[files["model.bin"]])
    for directory in (cli.root, cli.tmp):
        result = cli("cache", "clear", "--yes", env={"MODELSTORE_CACHE_DIR": str(directory)})
        assert result.returncode == 1 and f"{directory} is not a modelstore cache" in result.stderr
    assert api(cli).verify().ok and api(cli).load("churn")[0].read_bytes() == files["model.bin"].read_bytes()


def test_a_missing_object_names_the_version_and_file_and_what_restores_it(cli, files, tmp_path):
    from modelstore_core import MissingObjectError

    v = api(cli).upload("fraud", files=[files["model.bin"]])
    key = keys.object_key(v.files[0].sha256)
    (cli.root / key).unlink()  # lost: deleted by hand, or never copied

    with pytest.raises(MissingObjectError) as raised:
        ModelStore(cli.root, cache_dir=tmp_path / "fresh-cache").load("fraud")
    lost = raised.value
    assert (lost.domain, lost.version, lost.path, lost.sha256) == ("fraud", 1, "model.bin", v.files[0].sha256)
    download = cli("download", "fraud", "-o", tmp_path / "out")
    assert download.returncode == 1
    message = download.stderr
    assert message.startswith(f"Error: file 'model.bin' of version 1 of 'fraud' is missing from the store (its object {key} is gone")
    assert "Uploading a file with the same bytes again, to any domain, restores it" in message
    assert "`modelstore verify` lists the versions affected" in message

    verify = cli("verify")
    assert verify.returncode == 1 and verify.lines == [["fraud", "1", "model.bin", "missing"]]
    assert "--repair` deletes" not in verify.stderr  # it cannot bring a lost file back
    assert "a missing file is restored by uploading a file with the same bytes again" in verify.stderr
    assert "the store lost it" in json.loads(cli("verify", "--json").stdout)["problems"][0]["detail"]

    api(cli).upload("elsewhere", files=[files["model.bin"]])  # the same bytes, in any domain
    assert cli("verify").returncode == 0
    assert cli("download", "fraud", "-o", tmp_path / "out").returncode == 0
