"""`bench --version`, and --help texts that say true things on each command that shows them."""
from __future__ import annotations

import re
from importlib import metadata

import pytest

import bench
from bench.backbones.catalog import BACKBONES
from bench.cli import BACKBONE_NAMES, PROFILE_NAMES, main
from bench.core.config import PROFILES


@pytest.fixture(autouse=True)
def wide_help(monkeypatch):
    """Help unwrapped: argparse wraps to the terminal's width, at hyphens too (--sweep-seeds)."""
    monkeypatch.setenv("COLUMNS", "2000")


def help_of(capsys, *command: str) -> str:
    """A command's --help, its whitespace collapsed (the column between option and help)."""
    with pytest.raises(SystemExit) as exit:
        main([*command, "--help"])
    assert exit.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_version_is_the_installed_packages(capsys):
    with pytest.raises(SystemExit) as exit:
        main(["--version"])
    assert exit.value.code == 0
    assert capsys.readouterr().out == f"bench {metadata.version('bench')}\n"


def test_version_of_a_checkout_never_installed_is_the_packages_own(capsys, monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out == "bench 0.1.0\n"


def test_the_packages_own_version_is_the_installed_one():
    assert bench.__version__ == metadata.version("bench")


def test_the_description_names_both_backbone_families(capsys):
    text = help_of(capsys)
    assert "on T5 and on BERT-family encoders such as MiniLM (--model minilm)" in text
    assert "--version print bench's version and exit" in text


def test_the_listed_profiles_and_backbones_are_the_registries():
    assert set(re.findall(r"[\w-]+", PROFILE_NAMES)) - {"or", "default"} == set(PROFILES.names())
    assert set(re.findall(r"[\w-]+", BACKBONE_NAMES)) - {"a", "sentence", "encoder"} == set(BACKBONES.names())


def test_run_help_names_the_backbones_and_profiles_and_explains_every_option(capsys):
    text = help_of(capsys, "run")
    assert f"--model MODEL backbone: {BACKBONE_NAMES}, a Hub id" in text and "minilm" in BACKBONE_NAMES
    assert f"--profile PROFILE {PROFILE_NAMES}: bench/core/config.py PROFILES" in text
    assert "--epochs EPOCHS training epochs (default: the --config's or the profile's, else each task's" in text
    assert "--batch-size BATCH_SIZE training batch size (default:" in text
    assert "evaluation batches: --train eval_batch_size" in text
    assert "--max-train-examples N train on the first N training examples only" in text
    assert "--max-eval-examples N evaluate on the first N dev and test examples only" in text
    assert "several, comma-separated, make a grid" in text  # run's --method takes a list


@pytest.mark.parametrize("command", [["run"], ["sweep"], ["sources", "train"]])
def test_every_option_has_help(command):
    """No option on a command that trains is listed bare: each has a help text after its metavar."""
    from bench.cli import build_parser

    parser = build_parser()
    for name in command:
        parser = next(a for a in parser._actions if a.dest in ("command", "sources_command")).choices[name]
    bare = [a.option_strings[0] for a in parser._actions if a.option_strings and not a.help]
    assert bare == []


def test_sweep_help_is_sweeps_not_runs(capsys):
    text = help_of(capsys, "sweep")
    assert "make a grid" not in text
    assert "--method METHOD the method to sweep, one: pt" in text
    assert ("--seeds SEEDS the seeds the exported configuration (--export) runs, e.g. 0,1,2; the trials train them "
            "too unless --sweep-seeds is given") in text
    assert "--output OUTPUT the sweep's folder: each trial's results (trial-N/), sweep.md, sweep.png" in text
    assert "--config CONFIG a YAML/JSON run config, or a results file, whose configuration the trials start" in text
    assert "--resume refused: a sweep resumes its study by itself" in text
    assert "skip runs whose results exist" not in text and "a results file to rerun" not in text


def test_sources_train_help_says_what_it_uses(capsys):
    text = help_of(capsys, "sources", "train")
    assert "make a grid" not in text and "--method METHOD pt, the only one" in text
    assert "--seeds SEEDS not used: a source prompt trains once, on a seed of its own" in text
    assert "--resume not used: an entry already in the library is reused" in text


def test_sweep_refuses_a_method_list_as_its_help_says(capsys, tmp_path):
    code = main(["sweep", "--method", "pt,attempt", "--tasks", "rte", "--profile", "smoke", "--param", "lr",
                 "--trials", "1", "--output", str(tmp_path)])
    assert code == 2 and "unknown method 'pt,attempt'" in capsys.readouterr().err
