"""Tiny transformers objects built from scratch (no download), shared by the tests."""

#: Builds a tiny BERT classifier and a word-level tokenizer from scratch (no download); the same
#: source builds equal objects in another interpreter (see assert_deterministic_across_processes).
TINY = """
import torch, transformers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran", "far"]
vocab = {w: i for i, w in enumerate(WORDS)}
core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
core.normalizer = normalizers.Lowercase()
core.pre_tokenizer = pre_tokenizers.Whitespace()
core.post_processor = processors.TemplateProcessing(
    single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
)
tokenizer = transformers.PreTrainedTokenizerFast(
    tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]"
)
config = transformers.BertConfig(
    vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
    max_position_embeddings=32, num_labels=3,
)
torch.manual_seed(0)
model = transformers.BertForSequenceClassification(config).eval()
classifier = transformers.pipeline("text-classification", model=model, tokenizer=tokenizer)
"""

TEXTS = ["the cat sat on the mat", "a dog ran far", "the unknown word"]
