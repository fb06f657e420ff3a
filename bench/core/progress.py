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

    def note_once(self, message: str) -> None:
        """`note`, unless this display has noted the same message before: a weak source stage is
        fetched by every target run of a grid, and one warning says it."""
        said = self.__dict__.setdefault("said", set())
        if message not in said:
            said.add(message)
            self.note(message)


def log_console() -> Console:
    """Rich's console on stderr; where stderr is no terminal (a log file, a pipe) a message is never
    cut at the 80 columns rich assumes there: one message, one line, whole for grep."""
    console = Console(stderr=True)
    console.soft_wrap = not console.is_terminal
    return console


class RichDisplay(Progress):
    """Bars on a terminal; elsewhere (a log file) no bars, which would only add a blank line at the
    end, and the notes and finished runs' lines as on a terminal."""

    def __init__(self, console: Console | None = None):
        self.console = console or log_console()
        self.bar = RichProgress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
            console=self.console, transient=True, disable=not self.console.is_interactive,
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
