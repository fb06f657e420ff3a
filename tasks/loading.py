"""Rows from a source, through the split protocol, to formatted examples.

Three sources feed the same Hub schema: the Hub itself (what users run), the
official release files under `--data-dir`, and the small fixtures the project
ships (offline smoke runs and tests). Nothing after this module can tell
which one it got, except the `source` recorded in results.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from bench.core.hub import quiet_hub_retries
from bench.core.presets import Protocol
from bench.core.registry import UsageError
from tasks.base import PARQUET_BRANCH, DataError, Example, Task, is_commit
from tasks.splits import draw, fewshot_eval_split, split

FIXTURES = Path(__file__).parent / "fixtures"
SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class DataSource:
    kind: str
    """`hub`, `dir` (official files) or `fixtures`."""
    path: str | None = None
    """For `dir`: one folder, or several joined by the OS path separator (`glue/` from one
    release folder, `superglue/` from another); a task reads from the first that has its files."""

    @classmethod
    def resolve(cls, data_dir: str | None, fixtures: bool) -> "DataSource":
        if data_dir:
            return cls("dir", absolute_roots(data_dir))
        return cls("fixtures") if fixtures else cls("hub")

    def root(self, task: Task) -> Path:
        """The first folder that holds the task's release files (else the first folder, so that
        the missing-file error names where they were looked for)."""
        roots = [Path(root) for root in str(self.path).split(os.pathsep)]
        return next((root for root in roots if (root / task.official_dir).exists()), roots[0])

    def describe(self, task: Task) -> dict:
        if self.kind == "hub":
            return {"kind": "hub", "path": task.hub.path, "config": task.hub.config, "revision": task.hub.revision}
        if self.kind == "dir":
            return {"kind": "dir", "path": str(self.root(task) / task.official_dir)}
        return {"kind": "fixtures", "path": str(fixtures_of(task))}


def absolute_roots(data_dir: str) -> str:
    """`--data-dir` as absolute folders (a results file reruns from anywhere), each checked."""
    roots = []
    for root in data_dir.split(os.pathsep):
        if not Path(root).is_dir():
            raise UsageError(f"--data-dir {root!r} is not a directory")
        roots.append(str(Path(root).resolve()))
    return os.pathsep.join(roots)


def fixtures_of(task: Task) -> Path:
    return task.fixtures_dir or FIXTURES / task.name


@lru_cache(maxsize=64)
def read_rows(task: Task, hub_split: str, source: DataSource) -> list[dict]:
    """Hub-schema rows of one Hub split (cached: dev and test often come from the same split). A split
    without rows (a file holding only its header) is refused, naming it: a run would crash on it."""
    if source.kind == "fixtures":
        rows = read_jsonl(fixture_file(task, hub_split))
    elif source.kind == "dir":
        rows = task.read_official(source.root(task), hub_split)
    else:
        rows = read_hub(task, hub_split)
    if not rows:
        raise DataError(f"{split_origin(task, hub_split, source)}: no rows (a header at most); a split needs at least one")
    return rows


def fixture_file(task: Task, hub_split: str) -> Path:
    return fixtures_of(task) / f"{hub_split}.jsonl"


def split_origin(task: Task, hub_split: str, source: DataSource) -> str:
    """Where a Hub split's rows come from, for errors: the fixture or official file (the task's
    folder where its reader picks the file), or the Hub dataset's split."""
    if source.kind == "fixtures":
        return str(fixture_file(task, hub_split))
    if source.kind == "dir":
        return str(source.root(task) / task.official_dir / task.official_splits.get(hub_split, ""))
    return f"{hub_name(task)} split {hub_split}"


def hub_name(task: Task) -> str:
    """The Hub dataset a task reads, with its config: `aps/super_glue (boolq)`."""
    return task.hub.path + (f" ({task.hub.config})" if task.hub.config else "")


def read_json_lines(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of a jsonl or jsonl.gz file, blank lines skipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    records = []
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        records.append((number, json.loads(line)))
                    except json.JSONDecodeError as error:
                        raise DataError(f"{path}: line {number}: not valid JSON ({error.msg})") from None
    except FileNotFoundError:
        raise DataError(f"{path}: missing") from None
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read ({error})") from None
    return records


def read_jsonl(path: Path) -> list[dict]:
    return [record for _, record in read_json_lines(path)]


def read_hub(task: Task, hub_split: str) -> list[dict]:
    import datasets

    # the auto-converted parquet branch (or a commit of it) stores configs as folders, not as builder configs
    by_folder = task.hub.branch == PARQUET_BRANCH
    split, files = folder_split(hub_split) if by_folder else hub_split, task.hub_data_files(hub_split)
    try:
        with quiet_hub_retries():
            dataset = datasets.load_dataset(
                task.hub.path, None if by_folder else task.hub.config, data_dir=task.hub.config if by_folder else None,
                revision=task.hub.revision, split=split, **({"data_files": {split: files}} if files else {}),
            )
    except Exception as error:  # the Hub raises many types: offline, missing repo, revision, split or file
        raise UsageError(hub_failure(task, error)) from None
    if not is_commit(task.hub.revision):  # only once rows came: a failed read is one error line, no more
        warn_unpinned(task.hub.path, task.hub.revision)
    return task.select_hub_rows(dataset, hub_split).to_list()


@lru_cache(maxsize=None)
def warn_unpinned(path: str, branch: str) -> None:
    """One line on stderr, once per dataset and branch: a branch moves, so a later run may read
    other rows (a task file's `hub: {revision: COMMIT}` pins one; tasks/README.md lists the
    built-in tasks no commit could be found for)."""
    print(f"bench: warning: {path} is read at branch {branch!r}, not at a commit: a later run may read "
          "other rows (the results' data fingerprints tell)", file=sys.stderr)


def folder_split(hub_split: str) -> str:
    """The name `datasets` gives a split stored as a folder: it reads split names off folder
    names by keyword, so the parquet branch's `dev/` (WebNLG's dev split) is `validation`."""
    from datasets.data_files import SPLIT_KEYWORDS

    return next((str(split) for split, keywords in SPLIT_KEYWORDS.items() if hub_split in keywords), hub_split)


def hub_failure(task: Task, error: Exception) -> str:
    """One line: what could not be loaded, the Hub's own reason, and the offline alternatives
    where the reason is the network."""
    hub_id = hub_name(task)
    reason = " ".join(str(error).split())
    line = f"cannot load {hub_id} at revision {task.hub.revision} from the Hugging Face Hub: {type(error).__name__}"
    line += f": {reason}" if reason else ""
    if is_connection_error(error):
        line += (f"; offline, pass --data-dir with the official files (expects {task.official_dir}/) "
                 "or use --profile smoke for the shipped fixtures")
    return line


TRANSPORT_ERRORS = (("requests", "ConnectionError"), ("requests", "Timeout"), ("httpx", "TransportError"),
                    ("httpx2", "TransportError"))
"""Connection failures of the HTTP libraries huggingface_hub runs on (requests before its 1.0,
httpx or httpx2 since), looked up only where loaded: a library never imported raised nothing."""


def is_connection_error(error: BaseException) -> bool:
    """Whether the Hub could not be reached, by the error or an explicit cause (`raise ... from`):
    `datasets` raises ConnectionError ("Couldn't reach ... on the Hub"), huggingface_hub
    OfflineModeIsEnabled (a ConnectionError) or LocalEntryNotFoundError (offline and not cached)."""
    from huggingface_hub.utils import LocalEntryNotFoundError

    kinds = (ConnectionError, TimeoutError, LocalEntryNotFoundError) + tuple(
        getattr(sys.modules[module], name) for module, name in TRANSPORT_ERRORS if module in sys.modules)
    while error is not None:
        if isinstance(error, kinds):
            return True
        error = error.__cause__
    return False


def load_examples(
    task: Task, split_name: str, source: DataSource, protocol: Protocol, data_seed: int = 42,
    k_shot: int = 0, shot_seed: int = 0,
) -> list[Example]:
    """Examples of one split (train / validation = dev / test), in split order.

    With `k_shot`, train is `k_shot` rows drawn from the full train split with
    `shot_seed` (the few-shot tables' protocol); dev and test stay as they are, unless the
    protocol's `fewshot_dev_from_train` draws dev from train too (`fewshot_eval_split`).
    """
    if split_name not in SPLITS:
        raise UsageError(f"unknown split {split_name!r}; valid: {', '.join(SPLITS)}")
    group_key = task.group_key if task.group_switch and getattr(protocol, task.group_switch) else None
    read = lambda hub_split: read_rows(task, hub_split, source)  # noqa: E731
    if k_shot and split_name != "train" and protocol.fewshot_dev_from_train:
        rows = fewshot_eval_split(task, read, data_seed, group_key, split_name, k_shot, shot_seed)
    else:
        rows = split(task, read, data_seed, group_key, split_name)
    if not rows:  # its file has rows (read_rows), too few for the protocol to give this split one
        raise DataError(f"{task.name} {split_name} split: no rows, {source.describe(task)['path']} holds too few for "
                        f"its {task.split_protocol!r} split protocol to give it one")
    if k_shot and split_name == "train":
        rows = draw(rows, k_shot, shot_seed)
    for_training = split_name == "train"
    if not for_training:
        rows = task.evaluation_rows(rows)
    examples = []
    for number, row in enumerate(rows, 1):  # a row of the split (shuffled, drawn), not a line of a file
        try:
            examples.extend(task.format(row, protocol, for_training))
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"{task.name}: row {number} of the {split_name} split: cannot format "
                            f"({type(error).__name__}: {error})") from None
    return examples


def fingerprint(examples: list[Example]) -> str:
    """Hash of exactly what the model sees and is scored against (sources, targets and the
    scoring context: gold answers, references, groups), to tell two runs' data apart."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps([example.source, example.target, example.extra], ensure_ascii=False,
                                 sort_keys=True).encode())
    return digest.hexdigest()[:16]

