"""keys create/ls, sign, and signatures in upload, ls, info, download and verify (in-process).

Needs the ``signing`` extra (installed by the nox ``tests`` session).
"""

from __future__ import annotations

import json
import stat

from cli_helpers import one_line_error


def test_keys_sign_and_trust_from_the_command_line(cli, files, tmp_path):
    config = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    created = cli("keys", "create", "ci", env=config)
    assert created.returncode == 0, created.stderr
    [[public, ci_keyid]] = created.lines
    private = tmp_path / "config" / "modelstore" / "keys" / "ci.pem"
    assert public == str(private.with_name("ci.pub.pem")) and len(ci_keyid) == 32
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert private.read_text() not in created.stdout + created.stderr
    assert "exists already" in one_line_error(cli("keys", "create", "ci", env=config))
    release = json.loads(cli("keys", "create", "release", "--json", env=config).stdout)
    listed = cli("keys", "ls", env=config)
    assert [row[:2] for row in listed.lines] == [["ci", ci_keyid], ["release", release["keyid"]]]

    # Every upload signed through the environment.
    signing = {**config, "MODELSTORE_SIGNING_KEY": str(private)}
    assert cli("upload", "churn", files["model.bin"], env=signing).stdout.strip() == "1"
    assert cli("upload", "churn", files["config.json"], env=config).stdout.strip() == "2"  # unsigned
    rows = json.loads(cli("ls", "churn", "--json").stdout)
    assert {r["version"]: r["signatures"] for r in rows} == {1: [ci_keyid], 2: []}

    # A reader that trusts both keys (either suffices): version 2 is refused until the release manager signs it.
    trusting = {"MODELSTORE_TRUSTED_KEYS": f"{public}:{release['public_key']}"}
    out = cli("download", "churn", "1", "-o", tmp_path / "out", env=trusting)
    assert out.returncode == 0 and (tmp_path / "out" / "model.bin").is_file()
    error = one_line_error(cli("download", "churn", "2", "-o", tmp_path / "out2", env=trusting))
    assert "version 2 of 'churn' is not signed by a trusted key" in error and "modelstore sign churn 2" in error
    assert not (tmp_path / "out2").exists()

    signed = cli("sign", "churn", "2", "--key", "release", env=config)  # a key made by `keys create`, by name
    assert signed.stdout.strip() == release["keyid"], signed.stderr
    assert cli("download", "churn", "2", "-o", tmp_path / "out2", env=trusting).returncode == 0
    info = json.loads(cli("info", "churn", "2", "--signatures", env=trusting).stdout)
    assert info["signatures"] == [
        {"keyid": release["keyid"], "signed": info["signatures"][0]["signed"], "valid": True, "trusted": True, "problem": ""}
    ]
    assert json.loads(cli("info", "churn", "2").stdout)["version"] == 2  # the record, as stored, unchanged

    verified = cli("verify", "--signatures", "--json", env=trusting)
    report = json.loads(verified.stdout)
    assert verified.returncode == 0 and report["ok"]
    assert report["signers"] == {"churn/1": [ci_keyid], "churn/2": [release["keyid"]]}


def test_verify_signatures_reports_bad_and_untrusted_versions(cli, files, tmp_path):
    config = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    [[public, keyid]] = cli("keys", "create", "ci", env=config).lines
    cli("upload", "churn", files["model.bin"], env={**config, "MODELSTORE_SIGNING_KEY": "ci"})  # a key name works too
    record = cli.root / "domains" / "churn" / "versions" / "0000000001.json"
    doc = json.loads(record.read_text())
    doc["flavor"]["options"] = {"patched": True}
    record.write_text(json.dumps(doc))
    result = cli("verify", "--signatures", env={"MODELSTORE_TRUSTED_KEYS": public})
    assert result.returncode == 1
    assert [row[:4] for row in result.lines] == [["churn", "1", "", "bad-signature"], ["churn", "1", "", "untrusted"]]
    error = one_line_error(cli("sign", "churn", "1"))
    assert "no signing key" in error and "modelstore keys create" in error


def test_ls_sort_and_state_rank_by_signed_data_under_trusted_keys(cli, files, tmp_path):
    """A summary entry edited in the bucket (metric raised, checksum recomputed, record untouched) and a
    state edited to name another version: `ls` with trusted keys goes by what the key signed."""
    from modelstore_core import ModelStore
    from modelstore_core.protocol import keys
    from modelstore_core.protocol.summary import SummaryEntry, parse_segment, segment_document
    from modelstore_core.testing.tamper_contract import put

    config = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    [[public, _]] = cli("keys", "create", "ci", env=config).lines
    signing = {**config, "MODELSTORE_SIGNING_KEY": "ci"}
    for auc in ("0.8", "0.95", "0.9"):
        assert cli("upload", "churn", files["model.bin"], "--metric", f"auc={auc}", env=signing).returncode == 0
    assert cli("state", "set", "churn", "2", "production", env=signing).returncode == 0
    store = ModelStore(cli.root)
    key = keys.summary_key("churn", 1)
    entries = parse_segment(store.storage.read(key)[0], key, "churn", 1)
    forged = SummaryEntry(**{**entries[1].__dict__, "values": {**entries[1].values, "metrics": {"auc": 0.99}}})
    put(store, key, segment_document("churn", 1, {**entries, 1: forged}))
    states = json.loads(store.storage.read(keys.states_key("churn"))[0])
    states["states"]["production"]["version"] = 1
    put(store, keys.states_key("churn"), json.dumps(states).encode())

    trusting = {"MODELSTORE_TRUSTED_KEYS": public}
    assert [r[0] for r in cli("ls", "churn", "--sort", "-metrics.auc").lines][0] == "1"  # no policy: the summary as stored
    signed = cli("ls", "churn", "--sort", "-metrics.auc", "--json", env=trusting)
    ranked = [(r["version"], r["metrics"]["auc"], r["states"]) for r in json.loads(signed.stdout)]
    assert ranked == [(2, 0.95, []), (3, 0.9, []), (1, 0.8, [])]
    assert "state 'production' points at version 1, but its signed statement names version 2" in signed.stderr
    assert cli("ls", "churn", "--where", "state=production", env=trusting).lines == []
    error = one_line_error(cli("download", "churn", "--state", "production", "-o", tmp_path / "out", env=trusting))
    assert "signed statement names version 2" in error and "nothing was loaded" in error
