"""`--sources imported` takes a task's imported prompt whatever its origin: a released prompt file
(`bench sources import FILE`) or a PEFT prompt-tuning adapter (`bench sources import DIR --peft`),
the newest import where a task has both (methods/library.py `imported_specs`)."""
from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file

from bench.cli import main
from bench.core.registry import UsageError
from bench.pipeline.stages import imported_source
from helpers import result_file
from methods.library import PromptLibrary, imported_spec
from methods.spot.model import mean_similarity, token_similarity

peft = pytest.importorskip("peft")


def peft_adapter(folder, generator_seed: int):
    """A PEFT prompt-tuning adapter on tiny-t5 made by PEFT itself (10 virtual tokens; PEFT keeps
    2·10 rows for seq2seq, the second 10 set to 7 here, which reach no model and no import)."""
    from bench.backbones.model import load_backbone

    model = peft.get_peft_model(load_backbone("tiny-t5").model,
                                peft.PromptTuningConfig(task_type="SEQ_2_SEQ_LM", num_virtual_tokens=10))
    with torch.no_grad():
        weight = model.prompt_encoder["default"].embedding.weight
        weight[:10] = torch.randn(10, 64, generator=torch.Generator().manual_seed(generator_seed))
        weight[10:] = 7.0
    model.save_pretrained(str(folder), save_embedding_layers=False)
    return load_file(str(folder / "adapter_model.safetensors"))["prompt_embeddings"]


@pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")  # PEFT's own
def test_spot_t_runs_on_a_peft_import(tmp_path, capsys):
    """Imported with --peft, the adapter's first 10 rows are MNLI's source prompt: the run records
    the entry's key and origin, and SPoT-t's similarities are those of exactly those rows."""
    rows = peft_adapter(tmp_path / "adapter", 5)
    library = tmp_path / "library"
    assert main(["sources", "import", str(tmp_path / "adapter"), "--peft", "--task", "mnli", "--model", "tiny-t5",
                 "--library", str(library)]) == 0
    assert main(["run", "--method", "spot-t", "--tasks", "cb", "--fixtures", "--profile", "smoke", "--quiet",
                 "--seeds", "0", "--sources", "imported", "--option", "sources=mnli",
                 "--output", str(tmp_path / "runs"), "--library", str(library)]) == 0
    capsys.readouterr()
    result = json.loads(result_file(tmp_path / "runs", "spot-t", "cb").read_text())
    [entry] = [e for e in PromptLibrary(library).entries() if "imported" in e["spec"]]
    assert entry["spec"] == {"imported": "peft", "backbone": "tiny-t5", "task": "mnli"}
    [source] = [stage for stage in result["stages"] if stage["tasks"] == ["mnli"]]
    assert source == {"method": "pt", "tasks": ["mnli"], "origin": f"imported:{entry['key']}", "imported": "peft",
                      "file": str((tmp_path / "adapter").resolve())}
    [embedding_spec] = [e["spec"] for e in PromptLibrary(library).entries() if e["spec"].get("tasks") == ["cb"]]
    embedding = PromptLibrary(library).get(embedding_spec)["prompt"]
    report = result["method_report"]
    assert report["similarities"]["mean"]["mnli"] == pytest.approx(mean_similarity(rows[:10], embedding))
    assert report["similarities"]["tokens"]["mnli"] == pytest.approx(token_similarity(rows[:10], embedding))


def test_no_import_names_both_import_commands(tmp_path, capsys):
    code = main(["run", "--method", "spot-t", "--tasks", "cb", "--fixtures", "--profile", "smoke", "--quiet",
                 "--seeds", "0", "--sources", "imported", "--option", "sources=qnli",
                 "--output", str(tmp_path / "runs"), "--library", str(tmp_path / "library")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err == ("bench: error: no imported source prompt for 'qnli' on tiny-t5; run "
                   "`bench sources import FILE --task qnli --model tiny-t5` (a released prompt file) or "
                   "`bench sources import DIR --peft --task qnli --model tiny-t5` (a PEFT prompt-tuning adapter), "
                   "or use --sources library\n")
    assert not (tmp_path / "runs").exists()  # refused before any work: no stage trained, no folder made


class Notes:
    """A progress display that keeps its notes."""

    def __init__(self):
        self.notes = []

    def note(self, message):
        self.notes.append(message)


def imported_both(tmp_path):
    """MNLI imported from ATTEMPT's release (all 1s) and from a PEFT adapter (all 2s)."""
    library = PromptLibrary(tmp_path)
    for origin, value, file in (("attempt-release", 1.0, "/r/mnli.pt"), ("peft", 2.0, "/r/adapter")):
        library.put(imported_spec("tiny-t5", "mnli", origin), {"prompt": torch.full((3, 64), value)}, {"file": file})
    return library


def imported_at(library, origin: str, seconds: int) -> None:
    os.utime(library.folder(imported_spec("tiny-t5", "mnli", origin)) / "entry.json", (seconds, seconds))


@pytest.mark.parametrize("newer, older, value, file", [("peft", "attempt-release", 2.0, "/r/adapter"),
                                                       ("attempt-release", "peft", 1.0, "/r/mnli.pt")])
def test_of_two_origins_the_newest_import_is_used(tmp_path, newer, older, value, file):
    library = imported_both(tmp_path)
    imported_at(library, older, 1_000)
    imported_at(library, newer, 2_000)
    progress = Notes()
    tensors, record = imported_source(library, "tiny-t5", "mnli", progress)
    assert torch.equal(tensors["prompt"], torch.full((3, 64), value))
    key = library.entry(imported_spec("tiny-t5", "mnli", newer))["key"]
    assert record == {"origin": f"imported:{key}", "imported": newer, "file": file}
    other = "/r/mnli.pt" if file == "/r/adapter" else "/r/adapter"
    assert progress.notes == [f"source prompt for mnli: the newest import ({newer}, {file}) is used, "
                              f"not the older {older} import ({other})"]


def test_two_imports_of_one_time_take_the_release(tmp_path):
    """Written in the same nanosecond (a copied library), the order is fixed: the release first."""
    library = imported_both(tmp_path)
    imported_at(library, "peft", 1_000)
    imported_at(library, "attempt-release", 1_000)
    _, record = imported_source(library, "tiny-t5", "mnli", Notes())
    assert record["imported"] == "attempt-release"


def test_one_import_needs_no_note(tmp_path):
    library = PromptLibrary(tmp_path)
    library.put(imported_spec("tiny-t5", "mnli", "peft"), {"prompt": torch.ones(3, 64)}, {"file": "/r/adapter"})
    progress = Notes()
    tensors, record = imported_source(library, "tiny-t5", "mnli", progress)
    assert torch.equal(tensors["prompt"], torch.ones(3, 64)) and record["imported"] == "peft"
    assert progress.notes == []
    with pytest.raises(UsageError, match="no imported source prompt for 'mnli' on t5-base"):
        imported_source(library, "t5-base", "mnli", Notes())
