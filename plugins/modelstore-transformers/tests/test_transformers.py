"""modelstore-transformers: real (tiny) models, tokenizers and pipelines through a real local store,
loaded back by a fresh ModelStore."""

from __future__ import annotations

import importlib.metadata
import json

import pytest
import torch
import transformers
from tiny_transformers import TEXTS, TINY

from modelstore_core import ModelStoreError
from modelstore_core.testing.flavors import assert_deterministic_across_processes, stored_objects


def logits(model, tokenizer):
    with torch.no_grad():
        return model(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits


def test_tokenizer_round_trip(store, fresh, tiny):
    tokenizer = tiny["tokenizer"]
    v = store.upload("tok", model=tokenizer)
    assert v.flavor.options == {"kind": "tokenizer"} and v.flavor.safe is True
    assert {f.path for f in v.files} >= {"tokenizer.json", "tokenizer_config.json"}
    loaded = fresh().load("tok")
    assert isinstance(loaded, transformers.PreTrainedTokenizerBase) and loaded is not tokenizer
    for text in [*TEXTS, "THE CAT", ""]:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.decode(tokenizer("the cat sat")["input_ids"]) == tokenizer.decode(tokenizer("the cat sat")["input_ids"])
    assert loaded.special_tokens_map == tokenizer.special_tokens_map
    info = v.metadata["model"]
    assert info["kind"] == "tokenizer" and info["vocab_size"] == 14 and info["special_tokens"]["cls_token"] == "[CLS]"


def test_pipeline_round_trip(store, fresh, tiny):
    classifier = tiny["classifier"]
    v = store.upload("clf", model=classifier)
    assert v.flavor.options["task"] == "text-classification" and v.flavor.options["kind"] == "pipeline"
    assert {f.path.split("/")[0] for f in v.files} == {"model", "tokenizer"}
    loaded = fresh().load("clf")
    assert type(loaded) is type(classifier) and loaded.task == "text-classification"
    assert loaded(TEXTS, top_k=None) == classifier(TEXTS, top_k=None)
    torch.testing.assert_close(logits(loaded.model, loaded.tokenizer), logits(classifier.model, classifier.tokenizer), rtol=0, atol=0)
    assert v.metadata["model"]["task"] == "text-classification"
    assert v.metadata["model"]["tokenizer"]["class"].endswith(type(classifier.tokenizer).__name__)


def test_only_safetensors_and_json_are_stored_and_the_folder_loads_with_from_pretrained(store, fresh, tiny, tmp_path):
    model = tiny["model"]
    v = store.upload("m", model=model)
    assert {f.path for f in v.files} == {"config.json", "model.safetensors"}
    assert v.flavor.options == {"kind": "model", "auto_class": "AutoModelForSequenceClassification"}
    folder = fresh().download("m", to=tmp_path / "dl")
    again = transformers.AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
    torch.testing.assert_close(logits(again, tiny["tokenizer"]), logits(model, tiny["tokenizer"]), rtol=0, atol=0)


def test_metadata_has_version_class_and_hyperparameters(store, tiny):
    model = tiny["model"]
    v = store.upload("m", model=model)
    info = v.metadata["model"]
    assert info["framework"] == "transformers" and info["framework_version"] == transformers.__version__
    assert info["class"] == "transformers.models.bert.modeling_bert.BertForSequenceClassification"
    assert info["model_type"] == "bert" and info["architectures"] == ["BertForSequenceClassification"]
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    hp = info["hyperparameters"]
    assert hp["hidden_size"] == 16 and hp["num_hidden_layers"] == 1 and hp["vocab_size"] == 14 and len(hp["id2label"]) == 3
    deps = v.metadata["dependencies"]
    assert deps["transformers"] == transformers.__version__ and deps["torch"] == importlib.metadata.version("torch")


def test_same_objects_give_the_same_bytes_in_another_process(tmp_path):
    assert_deterministic_across_processes(tmp_path, TINY, {"m": "model", "t": "tokenizer", "p": "classifier"})


class Custom(transformers.BertForSequenceClassification):
    """A subclass no auto class maps: loaded through model=."""


def test_a_class_no_auto_class_maps_loads_through_model(store, fresh, tiny):
    torch.manual_seed(1)
    model = Custom(tiny["config"]).eval()
    v = store.upload("custom", model=model)
    assert v.flavor.options["auto_class"] is None
    with pytest.raises(ModelStoreError, match=r"model=Custom"):
        fresh().load("custom")
    loaded = fresh().load("custom", model=Custom)
    assert type(loaded) is Custom
    torch.testing.assert_close(logits(loaded, tiny["tokenizer"]), logits(model, tiny["tokenizer"]), rtol=0, atol=0)
    with pytest.raises(TypeError, match="PreTrainedModel subclass"):
        fresh().load("custom", model=torch.nn.Linear)


def test_models_with_custom_code_are_refused_at_upload(store, tiny):
    config = transformers.BertConfig(**tiny["config"].to_dict())
    config.auto_map = {"AutoModel": "modeling_mine.MyModel"}
    model = transformers.BertModel(config)
    with pytest.raises(TypeError, match="custom code"):
        store.upload("remote", model=model)
    assert store.list_domains() == []


def test_a_model_and_its_tokenizer_in_one_version(store, fresh, tiny):
    """Several models in one version: the model and the tokenizer, each in its own folder."""
    v = store.upload("pair", models={"model": tiny["model"], "tokenizer": tiny["tokenizer"]})
    assert {f.path.split("/")[0] for f in v.files} == {"model", "tokenizer"}
    assert v.parts["model"].options["kind"] == "model" and v.parts["tokenizer"].options["kind"] == "tokenizer"
    loaded = fresh().load("pair")
    torch.testing.assert_close(logits(loaded["model"], loaded["tokenizer"]), logits(tiny["model"], tiny["tokenizer"]), rtol=0, atol=0)
    assert fresh().load("pair", part="tokenizer")("the cat")["input_ids"] == tiny["tokenizer"]("the cat")["input_ids"]


#: A GPT-2 of four blocks (~880 KB of float32 weights), written as shards of at most 64 KB: about 15.
GPT2 = {"n_layer": 4, "n_embd": 64, "n_head": 2, "vocab_size": 500, "n_positions": 32}
SHARD = 64_000


def small_gpt2():
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**GPT2)).eval()


def next_token_logits(model):
    with torch.no_grad():
        return model(torch.arange(20).reshape(2, 10)).logits


def test_a_fine_tune_stores_only_the_shards_of_the_tensors_it_changed(store, fresh, tmp_path):
    model = small_gpt2()
    before = next_token_logits(model)
    first = store.upload("gpt", model=model, shard_size=SHARD)
    shards = [f for f in first.files if f.path.endswith(".safetensors")]
    assert len(shards) >= 10
    with torch.no_grad():  # the fine-tune: the attention of the last block only
        model.transformer.h[3].attn.c_attn.weight.add_(0.01)
    second = store.upload("gpt", model=model, shard_size=SHARD)
    index = json.loads((store.download("gpt", version=2, to=tmp_path / "dl") / "model.safetensors.index.json").read_text())
    old = {(f.path, f.sha256) for f in first.files}
    new = [f for f in second.files if (f.path, f.sha256) not in old]
    assert [f.path for f in new] == [index["weight_map"]["transformer.h.3.attn.c_attn.weight"]]
    assert second.bytes_written == new[0].size < sum(f.size for f in shards) / 8
    objects = stored_objects(tmp_path)
    assert len(objects) == len({f.sha256 for f in first.files}) + 1
    assert sum(p.stat().st_size for p in objects) == sum(f.size for f in first.files) + new[0].size
    # each version loads back as it was
    torch.testing.assert_close(next_token_logits(fresh().load("gpt", version=1)), before, rtol=0, atol=0)
    torch.testing.assert_close(next_token_logits(fresh().load("gpt", version=2)), next_token_logits(model), rtol=0, atol=0)
    assert not torch.equal(next_token_logits(model), before)


@pytest.mark.parametrize("size", [0, -5, "16MB", True, 1.5])
def test_shard_size_must_be_a_positive_number_of_bytes(store, tiny, size):
    with pytest.raises(ValueError, match="shard_size"):
        store.upload("m", model=tiny["model"], shard_size=size)
