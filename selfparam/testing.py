"""A tiny random Llama and a byte-level tokenizer built in code, for tests that need no weights.

The tokenizer maps every byte to one token (plus the chat special tokens), so any string round-trips;
the model has the real Llama architecture at toy size, so LoRA, merging, saving and generation run the
same code paths as on the real model in milliseconds.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from .lm import LM, prepare_tokenizer

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def byte_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level tokenizer: 256 byte tokens, then the special tokens, no merges."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", bos_token="<|im_start|>",
                                  pad_token="<|endoftext|>", additional_special_tokens=SPECIAL_TOKENS)
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_llama_config(vocab_size: int, **overrides) -> LlamaConfig:
    """A two-layer Llama at toy width; `overrides` change any field."""
    fields = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  tie_word_embeddings=True, pad_token_id=None)
    fields.update(overrides)
    return LlamaConfig(**fields)


def tiny_lm(seed: int = 0, **config_overrides) -> LM:
    """A random tiny Llama on the CPU in fp32 with the byte tokenizer, seeded for reproducibility."""
    tokenizer = byte_tokenizer()
    torch.manual_seed(seed)
    config = tiny_llama_config(len(tokenizer), **config_overrides)
    config.eos_token_id = tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    model = LlamaForCausalLM(config).eval()
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return LM(model=model, tokenizer=prepare_tokenizer(tokenizer), device=torch.device("cpu"),
              compute_dtype=torch.float32, name=f"tiny-llama-{seed}")
