"""One registry type for everything users name on the command line.

Methods, tasks, suites, backbones and presets are all looked up by a string a
person typed, so they share one lookup with aliases and "did you mean" errors
(the lm-evaluation-harness pattern) instead of each growing its own.
"""
from __future__ import annotations

import difflib
from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit code 2, no traceback."""


TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def typed_value(what: str, raw, current):
    """A `name=value` string from the command line, typed like the setting's current value;
    `what` names the setting in errors (e.g. "switch copa_question"). Non-strings pass as given."""
    if not isinstance(raw, str) or isinstance(current, str):
        return raw
    if isinstance(current, bool):
        if raw.lower() in TRUE + FALSE:
            return raw.lower() in TRUE
        raise UsageError(f"{what} takes true or false, not {raw!r}")
    try:
        if raw.lower() == "none":
            return None
        if isinstance(current, tuple):
            return tuple(type(item)(part) for item, part in zip(current, raw.split(","), strict=True))
        return type(current)(raw) if current is not None else float(raw)
    except ValueError:
        kind = ("numbers separated by commas" if isinstance(current, tuple)
                else "an integer" if isinstance(current, int) else "a number")
        raise UsageError(f"{what} takes {kind}, not {raw!r}") from None


class Registry(Generic[T]):
    """Names -> items, with aliases. With `plugins` (an entry-point group, e.g. `bench.methods`)
    the installed plugins add their entries on the first lookup, not at import: commands that
    never look a name up (`bench --help`) never scan the installed packages."""

    def __init__(self, kind: str, plugins: str | None = None):
        self.kind = kind
        self.plugins = plugins
        self._entries: dict[str, T] = {}
        self._alias_targets: dict[str, str] = {}

    @property
    def _items(self) -> dict[str, T]:
        """Every entry, the plugins' included (what all lookups read)."""
        self._load_plugins()
        return self._entries

    @property
    def _aliases(self) -> dict[str, str]:
        self._load_plugins()
        return self._alias_targets

    def _load_plugins(self) -> None:
        """Once: every entry point of the group registers its entries (bench/core/plugins.py)."""
        group, self.plugins = self.plugins, None
        if group:
            from bench.core.plugins import load_plugins

            load_plugins(group, self)

    def register(self, name: str, item: T, aliases: tuple[str, ...] = ()) -> T:
        """Add an entry; writes the stored dicts, so that built-ins registering at import load no plugin."""
        taken = [n for n in (name, *aliases) if n in self._entries or n in self._alias_targets]
        if taken:
            raise ValueError(f"{self.kind} {taken[0]!r} registered twice")
        self._entries[name] = item
        for alias in aliases:
            self._alias_targets[alias] = name
        return item

    def decorator(self, name: str, aliases: tuple[str, ...] = ()) -> Callable[[T], T]:
        return lambda item: self.register(name, item, aliases)

    def canonical(self, name: str) -> str:
        if name in self._items:
            return name
        if name in self._aliases:
            return self._aliases[name]
        raise UsageError(self.unknown_message(name))

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def unknown_message(self, name: str) -> str:
        known = sorted(self._items) + sorted(self._aliases)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"unknown {self.kind} {name!r}{hint}; valid: {', '.join(sorted(self._items))}"

    def names(self) -> list[str]:
        return list(self._items)

    def aliases_of(self, name: str) -> list[str]:
        return sorted(a for a, target in self._aliases.items() if target == name)

    def __contains__(self, name: str) -> bool:
        return name in self._items or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def items(self):
        return self._items.items()
