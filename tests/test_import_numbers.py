"""An import's number wish (``Uploader.upload(number=, claim_for=)``): the number if free, else the
next free one above it; a claim it made and never used (killed before its record) taken up again."""

from __future__ import annotations

import json

from modelstore_core import ModelStore
from modelstore_core.flavor import RAW_FILES, Flavor
from modelstore_core.importing import ImportedFiles
from modelstore_core.protocol import commit, feed, keys


def files(tmp_path, text: str) -> ImportedFiles:
    path = tmp_path / f"{text}.txt"
    path.write_text(text)
    return ImportedFiles([path], Flavor(RAW_FILES, RAW_FILES, "modelstore-core"))


def test_the_number_wished_for_if_free_else_the_next_free_one(tmp_path):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    assert store.uploader.upload("churn", files(tmp_path, "a"), number=3).version == 3
    assert store.uploader.upload("churn", files(tmp_path, "b"), number=1).version == 1
    assert store.uploader.upload("churn", files(tmp_path, "c"), number=3).version == 4  # 3 is taken
    assert store.upload("churn", files=[tmp_path / "a.txt"]).version == 5  # an upload goes past the latest
    assert sorted(v.version for v in store.list_versions("churn")) == [1, 3, 4, 5]
    assert [(e.event, e.version) for e in store.changes()] == [("uploaded", 3), ("uploaded", 1), ("uploaded", 4), ("uploaded", 5)]


def test_a_claim_left_by_the_same_import_is_taken_up_again(tmp_path):
    store = ModelStore(tmp_path / "store", cache_dir=tmp_path / "cache")
    store.uploader.upload("churn", files(tmp_path, "a"), number=1)
    # what an import killed between claiming 2 and writing its record leaves behind (where the feed ended, no marker left)
    claim = commit.claim_document(feed=feed.claim_feed(store.feed_end(), None), claim_for="mlflow:churn/2")
    store.storage.put_if_absent(keys.claim_key("churn", 2), claim)
    assert store.uploader.upload("churn", files(tmp_path, "b"), number=2, claim_for="mlflow:other/2").version == 3
    assert store.uploader.upload("churn", files(tmp_path, "c"), number=2, claim_for="mlflow:churn/2").version == 2
    claim = json.loads(store.storage.read(keys.claim_key("churn", 2))[0])
    assert claim["for"] == "mlflow:churn/2"
    # a claim that has its record is never taken again
    assert store.uploader.upload("churn", files(tmp_path, "d"), number=2, claim_for="mlflow:churn/2").version == 4
    # each in the change feed once, the taken-up claim's version too (its event is the one that claim says)
    events = list(store.changes())
    assert [(e.event, e.version) for e in events] == [("uploaded", 1), ("uploaded", 3), ("uploaded", 2), ("uploaded", 4)]
    assert store.feed_end() == 4
