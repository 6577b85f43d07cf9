"""The flavor kit's contract for a transformers model: discovery, a round trip through a fresh
store with the logits compared, deduplication, the disabled plugin's error, and no transformers
(or torch) import for raw files and unrelated objects."""

from __future__ import annotations

import pytest
import torch
from tiny_transformers import TEXTS

from modelstore_core.testing.flavors import FlavorContract


class TestTransformersFlavor(FlavorContract):
    plugin = "transformers"
    distribution = "modelstore-transformers"
    flavor = "transformers"
    framework_modules = ("transformers", "tokenizers", "torch", "safetensors")
    unrelated = ('{"not": "a model"}', "object()")
    own_model_code = (
        "import transformers\n"
        "model = transformers.BertModel(transformers.BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1,"
        " num_attention_heads=2, intermediate_size=8))"
    )

    @pytest.fixture
    def model(self, tiny):
        return tiny["model"]

    @pytest.fixture(autouse=True)
    def _tokenizer(self, tiny):
        self.tokenizer = tiny["tokenizer"]

    def predict(self, model):
        with torch.no_grad():
            return model(**self.tokenizer(TEXTS, padding=True, return_tensors="pt")).logits
