"""Prompt initialisation and prompt files, shared by every method that holds a prompt."""
from __future__ import annotations

import re
from pathlib import Path

import torch

from bench.core.registry import UsageError
from methods.base import MethodContext

VOCAB_INIT_RANGE = 5000
"""The papers' pool: token ids 0..4999, T5's SentencePiece order being roughly frequency order."""
PLACEHOLDER = re.compile(r"\[unused\d+\]|<unused\d+>|<extra_id_\d+>|madeupword\d+")
"""Rows a vocabulary reserves without ever training them (WordPiece's `[unused7]`, T5's sentinels,
fairseq's `madeupword0001`): near-duplicate, low-norm rows that start no prompt."""
INITS = ("vocab", "normal", "uniform", "text", "checkpoint")


def load_prompt_file(path: str | Path, key: str = "prompt") -> torch.Tensor:
    """A `[m, d]` prompt from safetensors or a torch file (ATTEMPT's release: a bare
    tensor saved on a GPU, so it is mapped to the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"prompt file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        tensor = tensors[key] if key in tensors else next(iter(tensors.values()))
    else:
        tensor = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(tensor, dict):
            tensor = tensor[key] if key in tensor else next(iter(tensor.values()))
    if tensor.dim() == 3 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 2:
        raise UsageError(f"prompt file {str(path)!r} holds shape {tuple(tensor.shape)}, expected [m, d]")
    return tensor.float()


def vocab_pool(tokenizer, rows: int, real_tokens: bool = True) -> torch.Tensor:
    """The token ids "vocab" init draws from, per tokenizer family: "the 5,000 most frequent tokens"
    (Lester et al.) as each family's vocabulary order allows.

    - T5 (SentencePiece, and tiny-t5's bytes): ids 0..4999, as the papers (pad, EOS and unk included).
    - Any other tokenizer, with `real_tokens`: the first 5,000 ids in vocabulary order that are
      neither special nor placeholders (`PLACEHOLDER`). WordPiece (BERT, MiniLM) also skips single
      characters: its vocabulary lists its whole alphabet in code-point order before the
      frequency-ordered pieces (on MiniLM 929 of those 997 rows are non-ASCII characters of norm
      0.60 and mutual cosine 0.41; its pool starts at id 1996, "the").
    - `real_tokens` off: ids 0..4999 on every tokenizer (bench's rule before; MiniLM's hold 994
      `[unused*]` rows)."""
    from transformers import ByT5Tokenizer, T5Tokenizer

    if not real_tokens or isinstance(tokenizer, (T5Tokenizer, ByT5Tokenizer)):
        return torch.arange(min(VOCAB_INIT_RANGE, rows))
    backend = getattr(tokenizer, "backend_tokenizer", None)
    wordpiece = backend is not None and type(backend.model).__name__ == "WordPiece"
    special = set(tokenizer.all_special_ids) | set(getattr(tokenizer, "added_tokens_decoder", {}))
    tokens = tokenizer.convert_ids_to_tokens(list(range(min(rows, len(tokenizer)))))
    pool = [i for i, token in enumerate(tokens) if i not in special and token
            and not PLACEHOLDER.fullmatch(token) and not (wordpiece and len(token) == 1)]
    return torch.tensor(pool[:VOCAB_INIT_RANGE])


def init_prompt(init: str, length: int, context: MethodContext, text: str = "", checkpoint: str = "",
                stream: str = "prompt") -> torch.Tensor:
    """A fresh `[length, d]` prompt by one of the papers' initialisations, drawn from the
    context's random stream `stream` (one per prompt, so two prompts never start alike)."""
    d, generator = context.d_model, context.generator(stream)
    if init == "vocab" and not context.protocol.vocab_init_pretrained:
        init = "normal"  # what the official code's "vocab" init really produced
    if init == "vocab":
        weight = context.embedding.weight
        pool = vocab_pool(context.tokenizer, weight.shape[0], context.protocol.vocab_init_real_tokens)
        ids = pool[torch.randperm(len(pool), generator=generator)[:length]]
        if len(ids) < length:
            raise UsageError(f"vocab init needs {length} distinct ids, the vocabulary offers {len(ids)}")
        return weight.detach()[ids].clone().float()
    if init == "normal":
        return torch.randn(length, d, generator=generator)
    if init == "uniform":
        return torch.rand(length, d, generator=generator) - 0.5
    if init == "text":
        if not text:
            raise UsageError("init 'text' needs init_text (method option init_text=...)")
        ids = torch.tensor(context.tokenizer(text, add_special_tokens=False).input_ids)
        ids = ids.repeat(-(-length // len(ids)))[:length]
        return context.embedding.weight.detach()[ids].clone().float()
    if init == "checkpoint":
        if not checkpoint:
            raise UsageError("init 'checkpoint' needs init_checkpoint (method option init_checkpoint=PATH)")
        prompt = load_prompt_file(checkpoint)
        if prompt.shape != (length, d):
            raise UsageError(f"checkpoint prompt {checkpoint!r} has shape {tuple(prompt.shape)}, expected {(length, d)}")
        return prompt
    raise UsageError(f"unknown prompt init {init!r}; valid: {', '.join(INITS)}")
