"""The method registry: names users type -> (method class, config with overrides).

A variant such as `attempt-token` is a registry entry whose config overrides
set `attention="token"`, not a new class. Entries name their class as
"module:Class" and import it on first use: model modules import torch, config
modules do not, so listing methods and validating options stay instant.
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field, fields, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bench.core.config import Range
from bench.core.registry import Registry, UsageError, typed_value

if TYPE_CHECKING:
    from methods.base import Method, MethodContext


@dataclass(frozen=True)
class MethodSpec:
    model: str
    """The method class as "module:Class", imported by `cls` on first use."""
    config_cls: type
    overrides: dict = field(default_factory=dict)
    summary: str = ""
    multi_task: bool = False
    """The class's own `multi_task`, stated here so that listings and reports need not import
    the model; `cls` refuses a class that disagrees."""

    @cached_property
    def cls(self) -> type[Method]:
        module, _, name = self.model.partition(":")
        cls = getattr(importlib.import_module(module), name)
        if cls.multi_task != self.multi_task:
            raise TypeError(f"{self.model} has multi_task={cls.multi_task}, its registry entry says {self.multi_task}")
        return cls

    def make_config(self, options: dict[str, Any] | None = None):
        config = replace(self.config_cls(), **self.overrides)
        return apply_options(config, options or {})

    def build(self, config, context: MethodContext) -> Method:
        return self.cls(config, context)

    def options(self) -> list[dict]:
        """Every config field with its default (variant overrides applied) and its docstring."""
        config, docs = self.make_config(), field_docs(self.config_cls)
        return [{"name": f.name, "default": getattr(config, f.name), "doc": docs.get(f.name, "")} for f in fields(config)]


def field_docs(cls) -> dict[str, str]:
    """The docstrings written under dataclass fields (and those of its bases), read from the source."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for node, following in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[node.target.id] = " ".join(following.value.value.split())
    return docs


SOURCE_OPTIONS = ("sources", "source_tasks")
"""The options that name the source tasks a transfer method reads the prompts of (SPoT, ATTEMPT:
`sources`; MPT: `source_tasks`), as a config's `option_tasks` resolves them."""

OPTION_RANGES = {
    "prompt_length": Range(1), "bottleneck": Range(1), "prompt_epochs": Range(1),
    "prompt_patience": Range(0, note="0: never stop early"), "key_dim": Range(0, note="0: d"),
    "mixing_cap": Range(0, note="0: none"), "max_tasks_per_batch": Range(0, note="0: all the run's tasks"),
    "lr": Range(0, exclusive=True), "weight_decay": Range(0),
}
"""The legal values of the numeric options that mean one thing in every method that has them
(counts of rows, epochs and examples; a rate): checked here, so that a plugin's method gets them too."""


def apply_options(config, options: dict[str, Any]):
    """Set config fields from `name=value` options, typed by the field's default, each in its range."""
    known = {f.name: f for f in fields(config)}
    typed = {}
    for name, value in options.items():
        if name not in known:
            raise UsageError(f"unknown option {name!r} for {type(config).__name__}; valid: {', '.join(known)}")
        typed[name] = typed_value(f"option {name}", value, getattr(config, name))
        if name in OPTION_RANGES:
            OPTION_RANGES[name].check(f"option {name}", typed[name], isinstance(getattr(config, name), int))
    return replace(config, **typed)


def model_export(package: str, name: str):
    """A method package's PEP 562 `__getattr__`: the names of its `__all__` that live in its
    `model` module, imported on first access, so `from methods.pt import PromptTuning` works
    while importing the package (and its torch-free config) never loads torch."""
    if name not in getattr(sys.modules[package], "__all__", ()):
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{package}.model"), name)


METHODS: Registry[MethodSpec] = Registry("method", plugins="bench.methods")


def _discover() -> None:
    """Method packages register themselves: each `methods/<name>/__init__.py` that defines
    `register(registry)` adds its entries. PT, the baseline the others build on, comes first;
    the rest in name order. Installed plugins' methods follow, from the `bench.methods` entry
    points, on the first lookup (bench/core/plugins.py)."""
    import pkgutil

    import methods

    packages = sorted((info.name for info in pkgutil.iter_modules(methods.__path__) if info.ispkg),
                      key=lambda name: (name != "pt", name))
    for name in packages:
        module = importlib.import_module(f"methods.{name}")
        if hasattr(module, "register"):
            module.register(METHODS)


_discover()
