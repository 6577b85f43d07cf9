"""Copy and mirror between local stores (the contract), and what only a local test can show:
signatures that still hold after a copy, the command line, and its summary."""

from __future__ import annotations

import io

import pytest
from test_signing import make_key

from modelstore_core import ModelStore
from modelstore_core.replicate import Selector
from modelstore_core.testing import CopyContract


class TestLocalToLocal(CopyContract):
    @pytest.fixture
    def source_url(self, tmp_path):
        return str(tmp_path / "source")

    @pytest.fixture
    def target_url(self, tmp_path):
        return str(tmp_path / "target")


def test_signatures_still_hold_after_a_copy(tmp_path):
    private, public, keyid = make_key(tmp_path, "ci")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 100)
    ModelStore(tmp_path / "a", signer=str(private)).upload("churn", files=[model])
    ModelStore(tmp_path / "a").copy_to(ModelStore(tmp_path / "b"))
    reader = ModelStore(tmp_path / "b", trusted_keys=[str(public)])
    assert [p.read_bytes() for p in reader.load("churn")] == [model.read_bytes()]
    assert [(s.keyid, s.valid, s.trusted) for s in reader.signatures("churn", 1)] == [(keyid, True, True)]


def test_a_signature_missing_in_the_target_is_added_on_the_next_copy(tmp_path):
    private, public, keyid = make_key(tmp_path, "ci")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    source = ModelStore(tmp_path / "a")
    source.upload("churn", files=[model])
    target = ModelStore(tmp_path / "b")
    source.copy_to(target)
    source.sign("churn", 1, key=str(private))  # signed after the first copy
    report = source.copy_to(target)
    assert report.skipped == ["churn:1"] and report.signatures == 1
    assert ModelStore(tmp_path / "b", trusted_keys=[str(public)]).load("churn")


@pytest.mark.parametrize(
    "text, parsed",
    [("churn", Selector("churn")), ("churn:3", Selector("churn", version=3)), ("churn@production", Selector("churn", state="production"))],
)
def test_selectors(text, parsed):
    assert Selector.parse(text) == parsed and str(parsed) == text


@pytest.mark.parametrize("text", ["churn:0", "churn:x", "../etc", "churn@"])
def test_bad_selectors_are_usage_errors(text):
    from modelstore_core import InvalidNameError, UsageError

    with pytest.raises((UsageError, InvalidNameError)):
        Selector.parse(text)


def test_unreadable_states_documents(tmp_path):
    from modelstore_core.protocol import keys

    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    source, target = ModelStore(tmp_path / "a"), ModelStore(tmp_path / "b")
    source.upload("churn", files=[model])
    source.set_state("churn", 1, "production")
    target.upload("fraud", files=[model])
    target.storage.put(keys.states_key("churn"), io.BytesIO(b"{not json"))  # the target's: replaced
    report = source.copy_to(target)
    assert report.copied == ["churn:1"] and target.states("churn") == {"production": 1}
    source.storage.put(keys.states_key("churn"), io.BytesIO(b"[]"))  # the source's: reported
    report = source.copy_to(ModelStore(tmp_path / "c"))
    assert report.copied == ["churn:1"] and any("states not copied" in p for p in report.problems)
