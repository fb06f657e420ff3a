"""What a run reports to its display: training steps, and evaluation batch by batch (generation
on a large split takes minutes and must not look frozen)."""
from __future__ import annotations

import io

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
