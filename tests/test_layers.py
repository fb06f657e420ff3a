"""The package layout is the architecture: bench/, methods/ and tasks/ form layers, bottom to top,
and a module imports only from its own layer or lower ones, with no import circle anywhere.

Every import counts: module level, inside functions, under `if TYPE_CHECKING:`. The check reads
the source with `ast` (nothing is imported). `BENCH_LAYERS_ROOT=/path/to/checkout pytest
tests/test_layers.py` checks another tree."""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("BENCH_LAYERS_ROOT", Path(__file__).resolve().parent.parent))
PACKAGES = ("bench", "methods", "tasks")

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("bench.core",)),  # registries and errors, presets, configuration, identity, results I/O
    ("tasks", ("tasks",)),  # task definitions, their data loading and metrics
    ("methods", ("methods",)),  # the prompt-transfer methods and the source-prompt library
    ("backbones", ("bench.backbones",)),  # backbone names, tokenizers, the frozen torch models, counts
    ("pipeline", ("bench.pipeline",)),  # one run: data, training, evaluation, stages, checkpoints, grid
    ("studies", ("bench.studies",)),  # over many runs: reports, statistics, comparisons, sweeps, plots
    ("commands", ("bench.cli", "bench.__main__", "bench")),  # the command line
]
"""Bottom to top. A prefix names a package and everything in it, except the bare `bench`, which is
only bench/__init__.py: a module directly under bench/ other than cli.py and __main__.py has no layer."""


def modules(root: Path) -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def layer_of(module: str) -> int | None:
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "bench" and module.startswith(prefix + ".")):
                return rank
    return None


def imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `module` imports, anywhere in its source."""
    def resolve(name: str) -> str | None:
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(resolve(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            submodules = {f"{base}.{alias.name}" for alias in node.names} & known.keys()
            found.update(submodules or {resolve(base)})
    return {name for name in found if name and name != module}


def graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)
    return {module: imports(module, path, known) for module, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def unlayered(edges: dict[str, set[str]]) -> list[str]:
    return [module for module in sorted(edges) if layer_of(module) is None]


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports from a lower layer into a higher one, as lines."""
    return [f"{module} ({LAYERS[layer_of(module)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
            for module, targets in sorted(edges.items()) for target in sorted(targets)
            if layer_of(module) is not None and layer_of(target) is not None and layer_of(target) > layer_of(module)]


@pytest.fixture(scope="module")
def edges():
    found = graph(ROOT)
    assert "bench.cli" in found, f"no bench/cli.py under {ROOT}"
    return found


def test_every_module_has_a_layer(edges):
    assert unlayered(edges) == []


def test_no_import_circle(edges):
    assert cycles(edges) == []


def test_imports_go_down(edges):
    assert upward(edges) == []


def test_package_inits_import_nothing(edges):
    """Importing bench.core.registry runs bench/__init__.py and bench/core/__init__.py first: those
    must not pull in a higher layer (here: they import nothing of the project's)."""
    known = modules(ROOT)
    assert {module: targets for module, targets in edges.items()
            if known[module].name == "__init__.py" and module.partition(".")[0] == "bench" and targets} == {}


def test_the_check_sees_lazy_upward_imports_and_circles(tmp_path):
    """On a small tree: a function-level import from core into the pipeline is both an upward import
    and, with the pipeline's import of core, a circle; a flat bench/ module has no layer."""
    files = {
        "bench/__init__.py": "",
        "bench/cli.py": "from bench.pipeline import runner\n",
        "bench/flat.py": "",
        "bench/core/__init__.py": "",
        "bench/core/registry.py": "def lookup():\n    from bench.pipeline.runner import run\n",
        "bench/pipeline/__init__.py": "",
        "bench/pipeline/runner.py": "from ..core import registry\n",
        "methods/__init__.py": "",
        "tasks/__init__.py": "",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    found = graph(tmp_path)
    assert found["bench.pipeline.runner"] == {"bench.core.registry"}
    assert cycles(found) == [["bench.core.registry", "bench.pipeline.runner"]]
    assert upward(found) == ["bench.core.registry (core) imports bench.pipeline.runner (pipeline)"]
    assert unlayered(found) == ["bench.flat"]
