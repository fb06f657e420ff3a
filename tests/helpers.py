"""Small helpers shared by the end-to-end tests."""
from __future__ import annotations

from pathlib import Path


def result_file(output: Path, method: str, tasks: str, name: str = "seed0.json") -> Path:
    """The one results file `name` of `method` on `tasks` under `output`: results live in one folder
    per configuration, `<output>/<method>/<tasks>/<configuration>/<name>`."""
    found = sorted(Path(output, method, tasks).glob(f"*/{name}"))
    assert len(found) == 1, f"expected one {method}/{tasks}/*/{name} under {output}, found {found}"
    return found[0]


def table_rows(text: str) -> list[list[str]]:
    """The rows (header first, the |---| line left out) of the first markdown table in `text`."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| "))
    rows = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        if not line.startswith("|-"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def board_rows(markdown: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in `markdown` (a board's scores), as dicts by its header."""
    header, *rows = table_rows(markdown)
    return [dict(zip(header, row)) for row in rows]
