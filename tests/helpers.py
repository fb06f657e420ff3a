"""Small helpers shared by the end-to-end tests."""
from __future__ import annotations

from pathlib import Path


def result_file(output: Path, method: str, tasks: str, name: str = "seed0.json") -> Path:
    """The one results file `name` of `method` on `tasks` under `output`: results live in one folder
    per configuration, `<output>/<method>/<tasks>/<configuration>/<name>`."""
    found = sorted(Path(output, method, tasks).glob(f"*/{name}"))
    assert len(found) == 1, f"expected one {method}/{tasks}/*/{name} under {output}, found {found}"
    return found[0]


def board_rows(markdown: str) -> list[dict[str, str]]:
    """The rows of the first markdown table in `markdown` (a board's scores), as dicts by its header."""
    lines = markdown.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("| "))
    table = []
    for line in lines[first:]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    return [dict(zip(table[0], row)) for row in table[2:]]
