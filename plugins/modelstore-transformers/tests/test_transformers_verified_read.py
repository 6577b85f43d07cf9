"""Every file transformers (and the plugin's checks) read is verified first (``verified.path``), a
pipeline's and a part's files too: a stored object damaged after upload (its last byte changed, or
cut short) raises ``IntegrityError`` naming it and nothing is returned, on a cold cache and on one
that verified the file before."""

from __future__ import annotations

import pytest
import torch
from tiny_transformers import TEXTS

from modelstore_core import IntegrityError
from modelstore_core.testing.flavors import open_store
from modelstore_core.testing.tamper_contract import damage_stored_file

CASES = {  # what is stored, and the stored file damaged
    "model-weights": ("model", "model.safetensors"),
    "model-config": ("model", "config.json"),
    "pipeline-tokenizer": ("classifier", "tokenizer/tokenizer.json"),
    "part-weights": ("parts", "model/model.safetensors"),
}


def logits(model, tokenizer):
    with torch.no_grad():
        return model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits


def check(loaded, stored, tiny):
    if stored == "model":
        expected, got = logits(tiny["model"], tiny["tokenizer"]), logits(loaded, tiny["tokenizer"])
    elif stored == "classifier":
        expected, got = logits(tiny["model"], tiny["tokenizer"]), logits(loaded.model, loaded.tokenizer)
    else:
        expected, got = logits(tiny["model"], tiny["tokenizer"]), logits(loaded["model"], loaded["tokenizer"])
    torch.testing.assert_close(got, expected, rtol=0, atol=0)


@pytest.mark.parametrize("how", ["flip-last", "truncate"])
@pytest.mark.parametrize("case", CASES)
def test_a_damaged_file_raises_and_returns_nothing(tmp_path, tiny, case, how):
    stored, file = CASES[case]
    store = open_store(tmp_path)
    if stored == "parts":
        v = store.upload("m", models={"model": tiny["model"], "tokenizer": tiny["tokenizer"]})
    else:
        v = store.upload("m", model=tiny[stored])
    warm = open_store(tmp_path, cache="warm")
    check(warm.load("m"), stored, tiny)  # verified once, remembered

    damage_stored_file(store, v, file, how)
    for reader in (open_store(tmp_path, cache="cold"), warm):
        with pytest.raises(IntegrityError, match=file.replace(".", r"\.")):
            reader.load("m")
