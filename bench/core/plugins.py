"""Plugins: installed packages that add methods, tasks or backbones without editing bench.

A package declares entry points in the groups `bench.methods` (adds
`methods.registry.MethodSpec`s), `bench.tasks` (`tasks.base.Task` instances) and
`bench.backbones` (`bench.backbones.catalog.T5Shape` or `PackagedModel` entries), each
naming a function `register(registry)` that adds its entries the way bench's
own packages do (`registry.register(name, item, aliases=...)`). A registry
loads its group on its first lookup (bench/core/registry.py), so commands that look nothing up never
scan the installed packages. A plugin that fails to import or to register is
one warning line on stderr, naming it; bench and the other plugins still work.
"""
from __future__ import annotations

import sys
from importlib.metadata import entry_points


def load_plugins(group: str, registry) -> None:
    """Call every `register` of `group` on `registry`, warning about (and skipping) those that fail."""
    for point in entry_points(group=group):
        try:
            point.load()(registry)
        except Exception as error:  # a plugin is someone else's code: any failure is its own
            reason = " ".join(str(error).split())
            print(f"bench: warning: plugin {point.name!r} ({group} = {point.value}) failed to load, its "
                  f"{registry.kind}s are unavailable: {type(error).__name__}" + (f": {reason}" if reason else ""),
                  file=sys.stderr)
