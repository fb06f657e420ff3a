"""Plugins by entry points (bench/core/plugins.py): the example package adds a method and a task that
`bench methods`, `bench tasks` and `bench run` use; a broken plugin is one warning line.

The example plugin is installed with pip into a temporary folder put on PYTHONPATH for a
`bench` subprocess, so the test environment is left as it was. Plugins of other shapes are
written as a module plus a hand-made `.dist-info` folder: that is all `importlib.metadata`
reads to find entry points.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from bench.core.registry import Registry, UsageError

REPO = Path(__file__).resolve().parent.parent


def bench(site: Path, *argv: str) -> subprocess.CompletedProcess:
    """`bench ARGV` in a fresh interpreter that sees the packages under `site`."""
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "bench", *argv], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def example_site(tmp_path_factory) -> Path:
    """examples/plugin installed with pip (no network, no build isolation) into a fresh folder;
    built from a copy, so that no build/ or egg-info is left in the project."""
    work = tmp_path_factory.mktemp("plugin")
    shutil.copytree(REPO / "examples" / "plugin", work / "source")
    site = work / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--quiet",
                           "--target", str(site), str(work / "source")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return site


def fake_plugin(site: Path, group: str, module: str, source: str) -> None:
    """A distribution named `module` whose entry point in `group` is `module:register`."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{module} = {module}:register\n")


def test_the_example_plugin_is_found_through_its_entry_points(example_site):
    entry_points = (next(example_site.glob("bench_example_plugin-*.dist-info")) / "entry_points.txt").read_text()
    assert "[bench.methods]\nbench-example = bench_example.methods:register" in entry_points
    methods = bench(example_site, "methods", "--json")
    assert methods.returncode == 0 and methods.stderr == ""
    assert {"name": "pt-scaled", "aliases": [], "summary": "prompt tuning with a learned scale (example plugin)",
            "multi_task": False, "overrides": {}} in json.loads(methods.stdout)
    options = bench(example_site, "methods", "pt-scaled")
    assert "  scale_init = 1.0\n      The scale's starting value" in options.stdout
    tasks = json.loads(bench(example_site, "tasks", "--json").stdout)
    polarity = next(task for task in tasks if task["name"] == "polarity")
    assert (polarity["split_protocol"], polarity["labels"], polarity["suites"]) == (
        "small", ["negative", "positive"], [])


def test_bench_run_trains_the_plugin_method_on_the_plugin_task(example_site, tmp_path):
    data = example_site / "bench_example" / "data"
    done = bench(example_site, "run", "--method", "pt-scaled", "--tasks", "polarity", "--profile", "smoke",
                 "--data-dir", str(data), "--output", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    [path] = tmp_path.glob("pt-scaled/polarity/*/seed0.json")
    result = json.loads(path.read_text())
    # the shipped files: 16 training rows, 8 validation rows halved into dev and test
    assert result["data"]["polarity"]["sizes"] == {"train": 16, "validation": 4, "test": 4}
    assert result["data"]["polarity"]["source"] == {"kind": "dir", "path": str(data.resolve() / "polarity")}
    # the smoke profile's 10 x 64 prompt on tiny-t5, plus the plugin's one scale
    assert (result["params"]["trainable"], result["test"]["polarity"]["n"]) == (641, 4)


def test_a_plugin_task_ships_its_own_fixtures_for_the_smoke_profile(example_site, tmp_path):
    done = bench(example_site, "run", "--method", "pt", "--tasks", "polarity", "--profile", "smoke",
                 "--output", str(tmp_path), "--quiet")
    assert done.returncode == 0, done.stderr
    [path] = tmp_path.glob("pt/polarity/*/seed0.json")
    data = json.loads(path.read_text())["data"]["polarity"]
    fixtures = example_site / "bench_example" / "fixtures" / "polarity"
    assert data["source"] == {"kind": "fixtures", "path": str(fixtures)}
    assert data["sizes"] == {"train": 16, "validation": 4, "test": 4}  # the same rows as the official files


def test_a_plugin_that_fails_to_import_is_one_warning_line_and_the_rest_still_works(tmp_path):
    fake_plugin(tmp_path, "bench.methods", "broken_plugin", "import no_such_module_anywhere\n")
    listing = bench(tmp_path, "methods")
    assert listing.returncode == 0
    assert listing.stderr == ("bench: warning: plugin 'broken_plugin' (bench.methods = broken_plugin:register) "
                              "failed to load, its methods are unavailable: ModuleNotFoundError: No module named "
                              "'no_such_module_anywhere'\n")
    assert listing.stdout.startswith("pt ")
    typo = bench(tmp_path, "run", "--method", "ptt", "--tasks", "boolq")
    assert typo.returncode == 2 and typo.stderr.splitlines()[-1].startswith("bench: error: unknown method 'ptt'")


def test_a_plugin_that_takes_a_name_in_use_is_refused_with_a_warning(tmp_path):
    fake_plugin(tmp_path, "bench.tasks", "greedy_plugin", "def register(registry):\n"
                "    from tasks.registry import TASKS\n    registry.register('cb', TASKS.get('rte'))\n")
    done = bench(tmp_path, "tasks", "--json")
    assert done.stderr == ("bench: warning: plugin 'greedy_plugin' (bench.tasks = greedy_plugin:register) failed to "
                           "load, its tasks are unavailable: ValueError: task 'cb' registered twice\n")
    assert next(task for task in json.loads(done.stdout) if task["name"] == "cb")["prefix"] == "superglue-cb"


def test_a_backbone_plugin_adds_a_t5_shape_that_bench_counts_offline(tmp_path):
    fake_plugin(tmp_path, "bench.backbones", "shape_plugin", "def register(registry):\n"
                "    from bench.backbones.catalog import T5Shape\n"
                "    registry.register('t5-mini', T5Shape('someone/t5-mini', 32, 64, 8, 4, 2))\n")
    done = bench(tmp_path, "params", "--method", "pt", "--model", "t5-mini", "--json")
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout)
    assert (counts["trainable"], counts["per_task"]) == (100 * 32, 100 * 32)  # PT: m = 100 rows of d_model = 32


def test_importing_the_registries_loads_no_plugin(tmp_path):
    """Built-ins register at import, plugins at the first lookup: importing every registry (what
    `bench --help` and argument checks pay for) scans no entry point, so a broken plugin stays silent."""
    fake_plugin(tmp_path, "bench.methods", "broken_plugin", "raise RuntimeError('loaded')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    imports = subprocess.run([sys.executable, "-c", "import bench.backbones.catalog, methods.registry, tasks.registry"],
                             cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert (imports.returncode, imports.stderr) == (0, "")
    assert (bench(tmp_path, "--help").stderr, bench(tmp_path, "methods").stderr.count("\n")) == ("", 1)


def register_widgets(registry) -> None:
    registry.register("widget", 2, aliases=("w",))


def test_a_registry_loads_its_plugins_once_at_the_first_lookup(monkeypatch):
    calls = []
    point = EntryPoint("widgets", f"{__name__}:register_widgets", "bench.widgets")

    def entry_points(group):
        calls.append(group)
        return [point]

    monkeypatch.setattr("bench.core.plugins.entry_points", entry_points)
    registry = Registry("thing", plugins="bench.widgets")
    registry.register("gear", 1)
    assert calls == []  # registering (what built-ins do at import) loads nothing
    assert registry.get("w") == 2 and registry.names() == ["gear", "widget"]
    assert "widget" in registry and registry.aliases_of("widget") == ["w"]
    assert calls == ["bench.widgets"]
    with pytest.raises(UsageError, match="unknown thing 'widgit' \\(did you mean 'widget'\\?\\); valid: gear, widget"):
        registry.canonical("widgit")
    assert calls == ["bench.widgets"]


def test_a_name_taken_as_an_alias_is_refused():
    registry = Registry("thing")
    registry.register("gear", 1, aliases=("g",))
    with pytest.raises(ValueError, match="thing 'g' registered twice"):
        registry.register("g", 2)
    with pytest.raises(ValueError, match="thing 'gear' registered twice"):
        registry.register("cog", 2, aliases=("gear",))
    assert registry.names() == ["gear"]
