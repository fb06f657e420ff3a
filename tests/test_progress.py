"""What a run reports to its display: training steps, and evaluation batch by batch (generation
on a large split takes minutes and must not look frozen)."""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from bench.cli import main
import bench.core.progress


class Recorder(bench.core.progress.Progress):
    def __init__(self):
        self.events = []

    def start_run(self, label, total_steps, done=0):
        self.events.append(("run", label, total_steps))

    def advance(self, status):
        self.events.append(("step",))

    def start_evaluation(self, split, total_batches):
        self.events.append(("evaluate", split, total_batches))

    def advance_evaluation(self):
        self.events.append(("batch",))

    def finish_evaluation(self):
        self.events.append(("evaluated",))


def test_training_and_evaluation_progress(monkeypatch, tmp_path):
    recorder = Recorder()
    monkeypatch.setattr(bench.core.progress, "RichDisplay", lambda: recorder)
    assert main(["run", "--method", "pt", "--tasks", "cb", "--profile", "smoke", "--epochs", "1",
                 "--train", "eval_batch_size=5", "--output", str(tmp_path)]) == 0
    # CB's fixture: 32 training examples in batches of 8; dev and test 12 examples each in batches of 5
    assert recorder.events == [("run", "pt · cb · seed 0", 4), *[("step",)] * 4,
                               ("evaluate", "validation", 3), *[("batch",)] * 3, ("evaluated",),
                               ("evaluate", "test", 3), *[("batch",)] * 3, ("evaluated",)]


def test_rich_display_shows_an_evaluation_bar():
    console = Console(file=io.StringIO(), force_terminal=True, width=100)
    display = bench.core.progress.RichDisplay(console)
    display.start_run("pt · cb · seed 0", 4)
    display.start_evaluation("test", 3)
    display.advance_evaluation()
    shown = [task.description for task in display.bar.tasks]
    completed = [task.completed for task in display.bar.tasks]
    display.finish_evaluation()
    after = [task.description for task in display.bar.tasks]
    display.close()
    assert shown == ["pt · cb · seed 0", "  evaluating test"] and completed == [0, 1]
    assert after == ["pt · cb · seed 0"]


def test_a_finished_runs_line_names_each_metric_the_board_shows():
    """MRPC's line reads "test 38.60" no more: its two metrics are named, their mean named as one."""
    from bench.pipeline.evaluation import Score
    from bench.pipeline.runner import test_line

    mrpc = Score({"accuracy": 42.9, "f1": 34.3}, invalid=0, n=20)
    rte = Score({"accuracy": 58.27}, invalid=0, n=20)
    assert test_line({"mrpc": mrpc}) == "test mrpc accuracy 42.90, f1 34.30 (mean 38.60)"
    assert test_line({"rte": rte}) == "test rte accuracy 58.27"
    assert test_line({"mrpc": mrpc, "rte": rte}) == "test mrpc accuracy 42.90, f1 34.30; rte accuracy 58.27 (mean 48.44)"


def test_a_log_file_gets_each_message_on_one_line(capsys):
    """stderr piped to a file: no cut at 80 columns, and no bars (nor the blank line they end with)."""
    display = bench.core.progress.RichDisplay()
    message = " ".join(["word"] * 40)  # 199 characters
    display.start_run("pt · cb · seed 0", 4)
    display.note(message)
    display.finish_run(message)
    display.close()
    assert capsys.readouterr().err == f"  {message}\n✓ {message}\n"


def test_a_display_notes_a_message_once_when_asked(capsys):
    display = bench.core.progress.RichDisplay()
    for message in ("weak", "other", "weak"):
        display.note_once(message)
    display.note("weak")  # a plain note is said each time
    display.close()
    assert capsys.readouterr().err == "  weak\n  other\n  weak\n"


# -- a Hub that cannot be reached: bench's one line, not huggingface_hub's retries --------------------------------

@pytest.fixture()
def hub_log():
    """What huggingface_hub's HTTP logger lets through, and a stand-in for a Hub call that cannot reach
    it: it logs a retry as huggingface_hub does, then fails."""
    import logging

    import huggingface_hub.utils._http  # noqa: F401  (configures the library's loggers)

    http, said = logging.getLogger("huggingface_hub.utils._http"), []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    http.addHandler(handler)

    def unreachable(*args, **kwargs):
        http.warning("Retrying in 1s [Retry 1/5].")
        raise ConnectionError("Couldn't reach the Hub")

    yield said, unreachable
    http.warning("after the load")  # the control: outside a Hub call the logger speaks again
    http.removeHandler(handler)
    assert said == ["after the load"], "huggingface_hub's logger was not given its level back"


def test_a_dataset_the_hub_cannot_serve_is_one_line(hub_log, monkeypatch):
    import datasets

    from bench.core.registry import UsageError
    from tasks.loading import read_hub
    from tasks.registry import TASKS

    monkeypatch.setattr(datasets, "load_dataset", hub_log[1])
    with pytest.raises(UsageError, match=r"^cannot load nyu-mll/glue \(rte\) at revision .*: ConnectionError: "
                                         r"Couldn't reach the Hub; offline, pass --data-dir"):
        read_hub(TASKS.get("rte"), "validation")
    assert hub_log[0] == []


@pytest.mark.parametrize("load", ["offline_config", "load_tokenizer"])
def test_a_backbone_config_or_tokenizer_the_hub_cannot_serve_is_one_line(hub_log, monkeypatch, load):
    import transformers

    import bench.backbones.catalog as catalog
    from bench.core.registry import UsageError

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", hub_log[1])
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", hub_log[1])
    with pytest.raises(UsageError, match="^cannot load backbone 'google/t5-missing' .*Hub is unreachable"):
        getattr(catalog, load)("google/t5-missing")
    assert hub_log[0] == []


def test_backbone_weights_the_hub_cannot_serve_are_one_line(hub_log, monkeypatch):
    import transformers

    import bench.backbones.model as model
    from bench.core.registry import UsageError

    monkeypatch.setattr(model, "load_tokenizer", lambda name: None)
    monkeypatch.setattr(model, "offline_config", lambda name: transformers.T5Config())
    monkeypatch.setattr(transformers.AutoModelForSeq2SeqLM, "from_pretrained", hub_log[1])
    with pytest.raises(UsageError, match="^cannot load backbone 'google/t5-missing' .*Hub is unreachable"):
        model.load_backbone("google/t5-missing")
    assert hub_log[0] == []
