"""`bench data prepare` and `bench data stats`: fetch, tokenise and describe suites."""
from __future__ import annotations

import numpy as np

from bench.pipeline.data import encode
from tasks.loading import SPLITS, DataSource, load_examples
from tasks.registry import TASKS


def prepare(task_names: list[str], source: DataSource, protocol, data_seed: int, tokenizer, report) -> list[dict]:
    """Download (Hub sources are cached by `datasets`) and tokenise every split into the cache."""
    summary = []
    for name in task_names:
        task = TASKS.get(name)
        sizes = {}
        for split in SPLITS:
            examples = load_examples(task, split, source, protocol, data_seed)
            encode(examples, tokenizer, task.max_source_length, task.default_max_target_length(tokenizer), 0)
            sizes[split] = len(examples)
        summary.append({"task": name, "source": source.describe(task), "sizes": sizes})
        report(f"{name}: {sizes['train']} train / {sizes['validation']} dev / {sizes['test']} test, tokenised")
    return summary


def length_stats(lengths: list[int], limit: int | None = None) -> dict:
    array = np.array(lengths)
    stats = {
        "mean": round(float(array.mean()), 1), "p50": int(np.percentile(array, 50)),
        "p95": int(np.percentile(array, 95)), "max": int(array.max()),
    }
    if limit is not None:
        stats["truncated_pct"] = round(100 * float((array > limit).mean()), 1)
    return stats


def stats(task_names: list[str], source: DataSource, protocol, data_seed: int, tokenizer) -> list[dict]:
    """Split sizes and source/target lengths in tokens (before truncation, EOS included)."""
    rows = []
    for name in task_names:
        task = TASKS.get(name)
        for split in SPLITS:
            examples = load_examples(task, split, source, protocol, data_seed)
            if not examples:
                rows.append({"task": name, "split": split, "n": 0})
                continue
            sources = [len(ids) for ids in tokenizer([e.source for e in examples]).input_ids]
            targets = [len(ids) for ids in tokenizer([e.target for e in examples]).input_ids]
            rows.append({
                "task": name, "split": split, "n": len(examples),
                "source_tokens": length_stats(sources, task.max_source_length),
                "target_tokens": length_stats(targets),
            })
    return rows
