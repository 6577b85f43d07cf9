"""retain, watch, lineage and card on the command line; upload's --parent and --card."""

from __future__ import annotations

import json
import os
import sys

import yaml
from cli_helpers import one_line_error

from modelstore_core import ModelStore


def api(cli) -> ModelStore:
    return ModelStore(cli.root, cache_dir=cli.tmp / "api-cache")


def test_upload_with_parents_and_a_card_then_lineage_and_card(cli, files):
    assert cli("upload", "churn", files["model.bin"]).returncode == 0
    up = cli("upload", "churn", files["config.json"], "--parent", "churn:1", "--card", "description=Fine-tuned", "--card", "license=mit")
    assert (up.returncode, up.stdout) == (0, "2\n"), up.stderr
    assert api(cli).info("churn", 2).parents == ["churn:1"] and api(cli).info("churn", 2).card == {
        "description": "Fine-tuned",
        "license": "mit",
    }
    error = one_line_error(cli("upload", "churn", files["model.bin"], "--parent", "churn:7"))
    assert "churn:7 is not a version of this store" in error
    assert "'mood' is not a section" in one_line_error(cli("upload", "churn", files["model.bin"], "--card", "mood=good"))

    rows = cli("lineage", "churn", "1").lines
    assert rows == [["child", "1", "churn:2", "churn:1", "true", rows[0][5], ""]]
    tree = json.loads(cli("lineage", "churn", "2", "--json").stdout)
    assert [p["version"] for p in tree["parents"]] == [1] and tree["children"] == []
    shown = cli.tty("lineage", "churn", "2")
    assert shown.returncode == 0 and "churn:2" in shown.stdout and "parents" in shown.stdout and "churn:1" in shown.stdout

    card = cli("card", "churn")
    assert card.returncode == 0 and card.stdout.startswith('---\nlicense: "mit"\n')
    out = cli.tmp / "README.md"
    assert cli("card", "churn", "2", "-o", out).returncode == 0
    assert yaml.safe_load(out.read_text()[4:].partition("\n---\n")[0])["base_model"] == ["churn:1"]
    assert "exists; pass --force" in one_line_error(cli("card", "churn", "-o", out))
    assert cli("card", "churn", "-o", out, "--force").returncode == 0
    info = cli.tty("info", "churn", "2")
    assert "parents" in info.stdout and "churn:1" in info.stdout and "Fine-tuned" in info.stdout
    compared = cli("compare", "churn", "1", "2").lines  # section, row, one column per version, direction
    assert ["parents", "parents", "", "churn:1", ""] in compared, compared


def test_retain_dry_run_apply_save_and_gc(cli, tmp_path):
    store = api(cli)
    for i in range(5):
        (tmp_path / f"m{i}").write_bytes(os.urandom(1000))
        store.upload("churn", files=[tmp_path / f"m{i}"])
    store.set_state("churn", 1, "production")
    dry = cli("retain", "churn", "--keep-last", "2")
    assert dry.returncode == 0 and dry.lines == [["churn:3"], ["churn:2"]]
    assert "Would delete 2 versions (2.0 kB for gc to reclaim)" in dry.stderr and "1: state production" in dry.stderr
    report = json.loads(cli("retain", "--keep-last", "2", "--json").stdout)
    assert report["dry_run"] and report["domains"][0]["deleted"] == [3, 2] and report["bytes"] == 2000
    bad = cli("retain", "churn", "--older-than", "3d")
    assert bad.returncode == 2 and "Error: --older-than and --save go with --keep-last" in bad.stderr
    assert "not a duration" in one_line_error(cli("retain", "churn", "--keep-last", "2", "--older-than", "soon"))
    saved = cli("retain", "churn", "--keep-last", "3", "--save")
    assert saved.returncode == 0 and "Saved the retention policy" in saved.stderr and saved.lines == [["churn:2"]]
    gc = cli("gc")
    assert gc.returncode == 0 and "churn (keep the last 3" in gc.stderr
    applied = cli("retain", "--apply")  # the stored policy
    assert applied.lines == [["churn:2"]] and "Deleted 1 version" in applied.stderr
    assert [v.version for v in store.list_versions("churn")] == [5, 4, 3, 1]
    assert cli("retain", "churn", "--forget").returncode == 0 and store.retention_policy("churn") is None
    assert "No domain has a stored retention policy" in cli("retain").stderr


def test_watch_prints_events_and_runs_a_command_with_them(cli, files, tmp_path):
    store = api(cli)
    store.upload("churn", files=[files["model.bin"]])
    store.set_state("churn", 1, "production")
    lines = cli("watch", "--since", "0", "--once").stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [(e["seq"], e["event"], e["domain"], e["version"], e["state"]) for e in events] == [
        (1, "uploaded", "churn", 1, None),
        (2, "state_set", "churn", 1, "production"),
    ]
    assert cli("watch", "--once").stdout == ""  # from now on: nothing new
    store.upload("fraud", files=[files["notes.txt"]])
    assert [json.loads(line)["domain"] for line in cli("watch", "fraud", "--since", "0", "--once").stdout.splitlines()] == ["fraud"]
    log = tmp_path / "handled.jsonl"
    script = (
        "import json, os, sys;"
        " keys = ('MODELSTORE_EVENT', 'MODELSTORE_DOMAIN', 'MODELSTORE_VERSION', 'MODELSTORE_STATE', 'MODELSTORE_SEQ');"
        f" open({str(log)!r}, 'a').write(json.dumps([os.environ[k] for k in keys]) + '\\n')"
    )
    command = f'{sys.executable} -c "{script}"'
    ran = cli.run("watch", "--since", "1", "--once", "--exec", command)
    assert ran.returncode == 0, ran.stderr
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        ["state_set", "churn", "1", "production", "2"],
        ["uploaded", "fraud", "1", "", "3"],
    ]
    failing = cli.run("watch", "--since", "2", "--once", "--exec", "exit 3")
    assert failing.returncode == 0 and "--exec failed (exit status 3) for event 3 (uploaded)" in failing.stderr
