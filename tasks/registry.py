"""The task and suite registries (names users type -> task objects)."""
from __future__ import annotations

from bench.core.registry import Registry
from tasks import glue, nlg, others, qa, superglue
from tasks.base import Task

TASKS: Registry[Task] = Registry("task", plugins="bench.tasks")
for _module in (glue, superglue, qa, others, nlg):
    for _cls in _module.TASK_CLASSES:
        TASKS.register(_cls.name, _cls(), aliases=tuple(a for a in (_cls.prefix, *_cls.aliases) if a != _cls.name))

SUITES: Registry[tuple[str, ...] | list[str]] = Registry("suite")
for _name, _members in {
    "source": ("mnli", "qnli", "qqp", "sst2", "squad", "record"),
    "glue": ("mnli", "qqp", "qnli", "sst2", "stsb", "mrpc", "rte", "cola"),
    "superglue": ("multirc", "boolq", "wic", "wsc", "cb"),
    "mrqa": ("nq", "hotpotqa", "searchqa", "newsqa"),
    "others": ("winogrande", "yelp", "scitail", "paws"),
    "nlg": ("e2e", "webnlg"),
    "amp": ("imdb", "sst2", "yelp", "stsb", "mrpc", "rte", "scitail", "cb", "multirc", "boolq", "qnli"),
    "fewshot": ("boolq", "cb", "scitail"),
}.items():
    SUITES.register(_name, _members)

BUILTIN_SUITES = tuple(SUITES.names())
"""The papers' suites: fixed, so that a user's task cannot change what a paper's table averages."""


def join_suite(suite: str, task_name: str) -> None:
    """Add a declared task (tasks/declarative.py) to a suite of the user's own, created on first
    mention (a list, so that later files extend it); the task file's check refused bench's suites."""
    if suite not in SUITES:
        SUITES.register(suite, [])
    SUITES.get(suite).append(task_name)


OUTSIDE_SUITES = {
    "copa": "in no suite: no paper reports it; kept for the presets' format comparison (switch copa_question)",
}
"""Why a task belongs to no suite (every such task says why; `bench tasks` shows it)."""


def suites_of(task_name: str) -> list[str]:
    return [name for name, members in SUITES.items() if task_name in members]


def describe_task(name: str) -> dict:
    """A task's description for listings, with its `note` when it is in no suite."""
    task = TASKS.get(name)
    described = task.describe(suites_of(task.name))
    if task.name in OUTSIDE_SUITES:
        described["note"] = OUTSIDE_SUITES[task.name]
    return described


def resolve_tasks(suite: str | None, tasks: str | None) -> list[str]:
    """`--suite` and/or `--tasks a,b` -> canonical task names (tasks must be in the suite)."""
    from bench.core.registry import UsageError

    members = list(SUITES.get(suite)) if suite else None
    if not tasks:
        if members is None:
            raise UsageError("give --suite or --tasks; suites: " + ", ".join(SUITES.names()))
        return members
    chosen = [TASKS.canonical(name.strip()) for name in tasks.split(",") if name.strip()]
    if members is not None:
        outside = [name for name in chosen if name not in members]
        if outside:
            raise UsageError(f"task {outside[0]!r} is not in suite {suite!r}; its tasks: {', '.join(members)}")
    return chosen
