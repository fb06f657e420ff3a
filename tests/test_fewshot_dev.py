"""`--set fewshot_dev_from_train=true`: a few-shot run selects on k more training rows and is
tested on the whole validation split of a small-protocol task (twice the test rows the papers'
halving leaves), checked against the official files read here and permutations drawn here."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from bench.cli import main
from bench.core.identity import configuration_key

SMOKE = ["run", "--method", "pt", "--tasks", "rte", "--model", "tiny-t5", "--profile", "smoke", "--epochs", "1", "--quiet",
         "--seeds", "0"]


def rte_rows(shared_data, name: str) -> list[tuple[str, str]]:
    """(sentence1, sentence2) of an official RTE file, in file order."""
    with open(shared_data / "glue" / "RTE" / name, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [(row[1], row[2]) for row in reader]


@pytest.fixture(scope="module")
def runs(shared_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("fewshot-dev")
    for name, switch in (("halves", []), ("from-train", ["--set", "fewshot_dev_from_train=true"])):
        assert main([*SMOKE, "--data-dir", str(shared_data), "--k-shot", "4", "--k-shot-draws", "2", *switch,
                     "--output", str(root / name)]) == 0
    return {name: {p.name: json.loads(p.read_text()) for p in (root / name).rglob("k4-*.json")}
            for name in ("halves", "from-train")}


def test_test_is_the_whole_validation_split(runs, shared_data):
    dev_rows = len(rte_rows(shared_data, "dev.tsv"))
    assert dev_rows == 277
    for result in runs["from-train"].values():
        assert result["data"]["rte"]["sizes"] == {"train": 4, "validation": 4, "test": 277}
        assert len(result["predictions"]["rte"]) == 277
    for result in runs["halves"].values():  # the papers' protocol: dev and test halve the 277 rows
        assert result["data"]["rte"]["sizes"]["test"] == 277 - 277 // 2 == 139


def test_dev_is_the_k_training_rows_after_the_draw(runs, shared_data):
    """Draw r trains on rows perm[:4] and selects on perm[4:8] of a permutation seeded 42 + r."""
    from bench.core.presets import PRESETS
    from tasks.loading import DataSource, load_examples
    from tasks.registry import TASKS

    train = rte_rows(shared_data, "train.tsv")
    protocol = PRESETS.get("paper").with_overrides({"fewshot_dev_from_train": "true"})
    source = DataSource.resolve(str(shared_data), False)
    fingerprints = set()
    for draw in (0, 1):
        result = runs["from-train"][f"k4-draw{draw}-seed0.json"]
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(42 + draw)).tolist()
        for split, rows in (("train", order[:4]), ("validation", order[4:8])):
            shown = [e.source for e in load_examples(TASKS.get("rte"), split, source, protocol, 42, 4, 42 + draw)]
            assert [any(train[i][0] in text and train[i][1] in text for text in shown) for i in rows] == [True] * 4
        halves = runs["halves"][f"k4-draw{draw}-seed0.json"]
        # the training draw is the papers' one: the same rows with or without the switch
        assert result["data"]["rte"]["fingerprints"]["train"] == halves["data"]["rte"]["fingerprints"]["train"]
        fingerprints.add(result["data"]["rte"]["fingerprints"]["validation"])
    assert len(fingerprints) == 2  # each draw its own dev rows


def test_one_configuration_for_every_draw_and_old_keys_kept(runs):
    keys = {configuration_key(r["identity"]) for r in runs["from-train"].values()}
    assert len(keys) == 1 and [r["run"]["configuration"] for r in runs["from-train"].values()] == [*keys] * 2
    halves = next(iter(runs["halves"].values()))
    assert "fewshot_dev_from_train" in halves["identity"]["protocol"]
    old = json.loads(json.dumps(halves["identity"]))
    del old["protocol"]["fewshot_dev_from_train"]  # a result made before the switch existed
    assert configuration_key(old) == configuration_key(halves["identity"]) != keys.pop()


def test_compare_rescores_the_whole_test_split(runs, tmp_path, capsys):
    """`bench compare` re-reads the test split the runs were scored on (fingerprint checked)."""
    folder = tmp_path / "board"
    for name, result in runs["from-train"].items():
        for method in ("pt", "spot-g"):
            copy = json.loads(json.dumps(result))
            copy["run"]["method"] = copy["identity"]["method"] = copy["config"]["method"] = method
            path = folder / method / "rte" / copy["run"]["configuration"] / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(copy))
    assert main(["compare", "spot-g", "pt", "--results", str(folder), "--resamples", "100", "--json"]) == 0
    [cell] = json.loads(capsys.readouterr().out)["tasks"]
    assert cell["test"]["difference"] == 0.0 and cell["test"]["n"] == 2


def test_too_few_training_rows_for_draw_and_dev_is_one_line(shared_data, tmp_path, capsys):
    """RTE's sample holds 32 training rows: k = 20 trains on 20 and would need 20 more for dev."""
    assert main([*SMOKE, "--data-dir", str(shared_data), "--k-shot", "20", "--set", "fewshot_dev_from_train=true",
                 "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "bench: error: --k-shot 20 needs 20 for training and 20 for dev of the 32 training rows available\n"
