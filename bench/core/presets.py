"""Protocol presets: the papers' described setup versus what the official code ran.

A preset is nothing but a named set of switches. Code reads the switches,
never the preset's name, so any switch can be flipped on its own
(`--set copa_question=false`) and every result records the resolved values.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace

from bench.core.registry import Registry, UsageError, typed_value


@dataclass(frozen=True)
class Protocol:
    # -- data: formats and splits (read by tasks/) --
    copa_question: bool = True
    """COPA shows its cause/effect question (the official code omits it)."""
    winogrande_both_options: bool = True
    """WinoGrande shows option1 and option2 (the official code shows option1 twice)."""
    fewshot_dev_from_train: bool = False
    """Few-shot runs select their checkpoint on k more training rows (the k after the draw's in its
    seeded permutation: LM-BFF's few-shot dev, as many labelled rows as the draw and never the same
    ones) and are tested on all of the protocol's test source: a small-protocol task (RTE, MRPC,
    STS-B), whose dev no longer takes half its validation split, on the whole of it. Twice the test
    rows, a test-set SE smaller by about 1.4 (off: dev and test halve the validation split, as the
    papers)."""
    stsb_grid: bool = True
    """STS-B targets snapped to T5's 0.2 grid (the official code rounds to one decimal)."""
    multirc_split_by_question: bool = True
    """MultiRC dev/test split keeps a question's answer options together (official: by row)."""
    record_per_query: bool = True
    """ReCoRD / QA scores averaged per query, not over rows duplicated per gold answer."""
    mrqa_own_data: bool = True
    """Each MRQA task has its own prefix (the official code formats them all as `squad`)."""
    # -- model and training (read by methods/ and the runner) --
    vocab_init_pretrained: bool = True
    """PT "vocab" init really copies pretrained embedding rows (official: N(0, 1))."""
    vocab_init_real_tokens: bool = True
    """On tokenizers other than T5's, "vocab" init draws only real tokens: no special tokens and no
    placeholder rows such as WordPiece's `[unused*]` (methods/prompts.py `vocab_pool`); off, ids
    0..4999 as on T5 (what bench did before). T5 draws ids 0..4999 either way, as the papers."""
    maxpool_mask_padding: bool = True
    """Padding excluded from ATTEMPT's input max-pool (official: pad to max length, unmasked)."""
    pad_to_max_length: bool = False
    """Pad every batch to the max source length instead of the longest example."""
    g_lr_effective: bool = True
    """ATTEMPT's attention module G trains at its own learning rate (official: the prompt's)."""
    g_layernorm_trainable: bool = True
    """ATTEMPT's G LayerNorm is trained (official: frozen)."""
    attempt_temperature: float = 0.0
    """ATTEMPT's softmax temperature where the method's own `temperature` option is 0: 0 means
    d·e, the paper's (2087.6 for d = 768); the official configs hard-code 2087 for every width."""
    multitask_own_prompt_eval: bool = True
    """Multi-task runs evaluate each task with its own prompt and metrics (official: task 0's)."""
    generation_max_new_tokens: int = 0
    """0: longest tokenised gold target + margin; else a fixed cap (official: 19, its
    `max_length` 20 counts the decoder start token)."""
    attempt_weight_decay: float | None = None
    """Weight decay forced on ATTEMPT runs (official: 0); None keeps the method default."""
    weight_decay_everywhere: bool = False
    """AdamW weight decay also on LayerNorm weights, biases and AMP's identity-initialised W_V
    (default: exempt, as HF Trainer does, since decay pulls them towards 0 instead of their start)."""
    # -- metrics (read by tasks/metrics.py) --
    matthews_invalid_class: bool = False
    """Matthews correlation counts an invalid prediction as a class of its own, as the official
    code's sklearn call on strings does (default: it flips the gold label, like F1)."""

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def with_overrides(self, overrides: dict[str, str]) -> "Protocol":
        """Apply `name=value` strings from the command line, typed by the field."""
        known = {f.name: f for f in fields(self)}
        typed = {}
        for name, raw in overrides.items():
            if name not in known:
                raise UsageError(
                    f"unknown protocol switch {name!r}; valid: {', '.join(sorted(known))}"
                )
            typed[name] = typed_value(f"switch {name}", raw, getattr(self, name))
        return replace(self, **typed)


PRESETS: Registry[Protocol] = Registry("preset")
PRESETS.register("paper", Protocol())
PRESETS.register(
    "attempt-code",
    Protocol(
        copa_question=False,
        winogrande_both_options=False,
        stsb_grid=False,
        multirc_split_by_question=False,
        record_per_query=False,
        mrqa_own_data=False,
        vocab_init_pretrained=False,
        maxpool_mask_padding=False,
        pad_to_max_length=True,
        g_lr_effective=False,
        g_layernorm_trainable=False,
        attempt_temperature=2087.0,
        multitask_own_prompt_eval=False,
        generation_max_new_tokens=19,
        attempt_weight_decay=0.0,
        matthews_invalid_class=True,
    ),
    aliases=("code", "official"),
)
