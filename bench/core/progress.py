"""The live display of a run: a rich progress bar, or nothing (tests, CI logs)."""
from __future__ import annotations

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn,
                           TimeRemainingColumn)


class Progress:
    """Silent progress: the interface the runner reports to."""

    def start_grid(self, total_runs: int) -> None: ...
    def advance_grid(self) -> None: ...
    def start_run(self, label: str, total_steps: int, done: int = 0) -> None: ...
    def advance(self, status: str) -> None: ...
    def start_evaluation(self, split: str, total_batches: int) -> None: ...
    def advance_evaluation(self) -> None: ...
    def finish_evaluation(self) -> None: ...
    def note(self, message: str) -> None: ...
    def finish_run(self, message: str) -> None: ...
    def close(self) -> None: ...


class RichDisplay(Progress):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, transient=True,
        )
        self.bar.start()
        self.current = self.evaluation = self.grid = None

    def start_grid(self, total_runs):
        """The whole grid's bar (runs done of all, time left) above the current run's."""
        self.grid = self.bar.add_task("grid: runs", total=total_runs, status="")

    def advance_grid(self):
        self.bar.update(self.grid, advance=1)

    def start_run(self, label, total_steps, done=0):
        self.current = self.bar.add_task(label, total=total_steps, completed=done, status="")

    def advance(self, status):
        self.bar.update(self.current, advance=1, status=status)

    def start_evaluation(self, split, total_batches):
        """A bar of its own: generation on a large split takes minutes and must not look frozen."""
        name = {"validation": "dev", "test": "test"}.get(split, split)
        self.evaluation = self.bar.add_task(f"  evaluating {name}", total=total_batches, status="")

    def advance_evaluation(self):
        self.bar.update(self.evaluation, advance=1)

    def finish_evaluation(self):
        self.bar.remove_task(self.evaluation)

    def note(self, message):
        self.bar.console.print(f"  {message}", highlight=False)

    def finish_run(self, message):
        self.bar.remove_task(self.current)
        self.bar.console.print(f"[green]✓[/green] {message}", highlight=False)

    def close(self):
        self.bar.stop()
