"""PEFT interchange: a bench result's prompt as a PEFT prompt-tuning adapter, and a PEFT prompt
adapter as a source prompt.

An adapter is the folder PEFT's `save_pretrained` writes (`adapter_config.json` +
`adapter_model.safetensors`), which `peft.PeftModel.from_pretrained(base_model, DIR)` loads:
- T5 (task type SEQ_2_SEQ_LM): the prompt in front of the encoder input, where bench puts it.
  PEFT allocates 2·m rows for seq2seq and only the first m reach the model
  (shared/spec/methods.md), so rows m.. are written as zeros and read by no one.
- Encoders (SEQ_CLS): bench puts its prompt after the first token ([CLS]); PEFT puts its virtual
  tokens before the input. The adapter's m + 1 virtual tokens are [CLS]'s embedding and the
  prompt, so fed the input *without* its [CLS] PEFT builds bench's input embeddings; the head is
  PEFT's `classifier` (`modules_to_save`), which must read the first token's final state: the
  base model's pooler is `bench.studies.perf.FirstToken` (the PEFT twin `bench.studies.perf.peft_sequence_classifier`
  builds, tests/test_peft_parity.py). A regression head's target standardisation is folded into
  its weights, so PEFT's score is bench's prediction.

Only a result whose prompt is one fixed tensor can be exported (`EXPORTABLE`); a prompt computed
per input (ATTEMPT) or a mean-pooled head are things a PEFT prompt adapter cannot express.
"""
from __future__ import annotations

import importlib.util
import json
import tempfile
from pathlib import Path

import torch

from bench.core.registry import UsageError
from bench.core.results import atomic_write, write_json
from tasks.registry import TASKS

EXPORTABLE = "PT, SPoT-g and SPoT-t (one trained prompt) and AMP (its computed target prompts, one task per adapter)"
CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"
PROVENANCE = "bench_export.json"
"""Beside PEFT's files (which PEFT ignores): the result and task exported, and `prompt_from_row`, the
first virtual token that is bench's prompt (1 on encoders, after [CLS]'s row), so an import
gets bench's prompt back exactly."""


def read_result(path: Path) -> dict:
    """A bench results file, or one line saying why it is not one."""
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{str(path)!r} is not a readable results file ({type(error).__name__})") from None
    if not isinstance(result, dict) or "run" not in result or "checkpoint" not in result:
        raise UsageError(f"{str(path)!r} is not a bench results file (no run or checkpoint): give a runs/**/*.json")
    return result


def result_task(result: dict, task: str | None) -> str:
    """The task the adapter is for: the result's only task, or `task` among its tasks."""
    tasks = result["run"]["tasks"]
    if task is None and len(tasks) == 1:
        return tasks[0]
    if task not in tasks:
        raise UsageError(f"--task {task!r}: an adapter holds one task's prompt; this result's tasks: {', '.join(tasks)}")
    return task


def fixed_prompt(result: dict, folder: Path, state: dict[str, torch.Tensor], task: str) -> torch.Tensor:
    """The `[m, d]` prompt every input of `task` gets: the method's exported prompt for the task
    (`Method.export`, AMP), else the checkpoint `state`'s only tensor `prompt` (PT, SPoT);
    anything else is refused."""
    from safetensors.torch import load_file

    method = result["run"]["method"]
    if result.get("export"):
        exported = load_file(str(folder / result["export"]))
        if task in exported:
            return exported[task]
    own = sorted(key for key in state if not key.startswith("head."))
    if own == ["prompt"]:
        return state["prompt"]
    raise UsageError(f"this {method} result holds no single fixed prompt (its tensors: {', '.join(own) or 'none'}), "
                     f"which is all a PEFT prompt-tuning adapter can hold; results that export: {EXPORTABLE}")


def export_peft(result_path: Path, out: Path, task: str | None = None) -> Path:
    """Write the result's prompt (and, on an encoder, its head) as a PEFT prompt-tuning adapter in `out`."""
    from safetensors.torch import load_file

    from bench.backbones.model import load_backbone

    if importlib.util.find_spec("peft") is None:
        raise UsageError("bench export --peft needs PEFT, which writes the adapter: pip install peft")
    result = read_result(result_path)
    task = result_task(result, task)
    pooling = result["config"]["train"].get("head_pooling", "first")
    if result["identity"]["train"].get("pair_encoding") == "two_tower" and TASKS.get(task).pair_fields:
        also = " --train head_pooling=first" if pooling != "first" else ""  # two towers: an encoder, whose head counts
        raise UsageError(f"the result reads {task}'s two texts with two towers (pair_encoding=two_tower), each "
                         "encoded alone: PEFT's SEQ_CLS prompt tuning reads one segment; rerun with "
                         f"`--train pair_encoding=joint{also}` to get an exportable result")
    state = load_file(str(result_path.parent / result["checkpoint"]))
    prompt = fixed_prompt(result, result_path.parent, state, task)
    backbone = load_backbone(result["run"]["backbone"])
    if not backbone.generates and pooling != "first":
        raise UsageError(f"the result's head pools by {pooling} (head_pooling={pooling}, as the cpu profiles set "
                         "on MiniLM): PEFT's classifier reads one token's state; rerun with "
                         "`--train head_pooling=first` to get an exportable result")
    model = (t5_adapter(backbone, prompt) if backbone.generates
             else encoder_adapter(backbone, head_of(result, state, task), task, prompt))
    save_readable(model, out)
    write_json(out / PROVENANCE, {"result": str(result_path.resolve()), "task": task,
                                  "prompt_from_row": 0 if backbone.generates else 1})
    return out


def save_readable(model, out: Path) -> None:
    """PEFT's `save_pretrained` files (the prompt and head, not the embeddings) written into `out`
    by `atomic_write`, so they get the mode every bench output has: safetensors' own writer makes
    `adapter_model.safetensors` private (0600)."""
    with tempfile.TemporaryDirectory() as staging:
        model.save_pretrained(staging, save_embedding_layers=False)
        for file in sorted(Path(staging).iterdir()):
            atomic_write(out / file.name, file.read_bytes())


def t5_adapter(backbone, prompt: torch.Tensor):
    """PEFT's SEQ_2_SEQ_LM prompt tuning of the backbone holding `prompt` in its first m rows."""
    import peft

    from bench.studies.perf import peft_model

    model = peft_model(backbone.model, peft.PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=len(prompt)))
    model.peft_config["default"].base_model_name_or_path = backbone.model.name_or_path or backbone.name
    with torch.no_grad():
        weight = model.prompt_encoder["default"].embedding.weight
        weight.zero_()
        weight[: len(prompt)] = prompt
    return model


def head_of(result: dict, state: dict[str, torch.Tensor], task: str) -> dict[str, torch.Tensor]:
    """The state of `task`'s head (`head.{i}.*` in the checkpoint, i its place in the run's tasks)."""
    prefix = f"head.{result['run']['tasks'].index(task)}."
    return {key.removeprefix(prefix): value for key, value in state.items() if key.startswith(prefix)}


def encoder_adapter(backbone, head: dict[str, torch.Tensor], task: str, prompt: torch.Tensor):
    """PEFT's SEQ_CLS twin of bench's encoder (`bench.studies.perf.peft_sequence_classifier`) with the
    result's head as its classifier."""
    from bench.studies.perf import peft_sequence_classifier

    view = backbone.for_tasks([TASKS.get(task)], seed=0)
    view.heads[0].load_state_dict(head)
    view.heads[0] = unstandardised(view.heads[0])
    return peft_sequence_classifier(view, prompt)


def unstandardised(head: torch.nn.Linear) -> torch.nn.Linear:
    """A plain linear map giving what bench predicts: a regression head predicts `(y - mean) / std`,
    so its weights times std, plus mean on the bias, predict y (a classification head is kept)."""
    if not hasattr(head, "target_mean"):
        return head
    plain = torch.nn.Linear(head.in_features, head.out_features)
    with torch.no_grad():
        plain.weight.copy_(head.weight * head.target_std)
        plain.bias.copy_(head.bias * head.target_std + head.target_mean)
    return plain


def load_peft_prompt(folder: str | Path) -> torch.Tensor:
    """The `[m, d]` prompt of a PEFT prompt-tuning adapter folder: its `prompt_embeddings`, the
    first `num_virtual_tokens` rows (seq2seq adapters hold 2·m, of which only m reach the model),
    less the leading [CLS] row of an encoder adapter bench exported (`PROVENANCE`)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    missing = [name for name in (CONFIG, WEIGHTS) if not (folder / name).is_file()]
    if missing:
        raise UsageError(f"{str(folder)!r} is not a PEFT adapter folder: no {' or '.join(missing)} "
                         "(PEFT's save_pretrained writes both)")
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UsageError(f"{str(folder / CONFIG)!r} is not JSON") from None
    kind = config.get("peft_type")
    if kind != "PROMPT_TUNING":
        raise UsageError(f"{str(folder)!r} is a PEFT adapter of type {kind!r}: only a PROMPT_TUNING adapter holds "
                         "a prompt (prompt_embeddings) bench can use as a source prompt")
    tensors = load_file(str(folder / WEIGHTS))
    if "prompt_embeddings" not in tensors:
        raise UsageError(f"{str(folder / WEIGHTS)!r} holds no prompt_embeddings (its tensors: {', '.join(tensors)})")
    start = json.loads((folder / PROVENANCE).read_text())["prompt_from_row"] if (folder / PROVENANCE).is_file() else 0
    return tensors["prompt_embeddings"][start : config["num_virtual_tokens"]].float()
