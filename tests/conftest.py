"""Offline test setup and the path to the real dataset files in ../shared/data."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("BENCH_CACHE", tempfile.mkdtemp(prefix="bench-cache-"))
os.environ.setdefault("BENCH_LIBRARY", os.path.join(os.environ["BENCH_CACHE"], "library"))

# tiny-t5's ops are too small to share out: extra threads only spin-wait on a busy 2-core machine
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("BENCH_SHARED_DATA", REPO.parent / "shared" / "data"))
SHARED_DATA_CPU = SHARED_DATA.parent / "data-cpu"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real official files; tests that need them skip where ../shared is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real dataset files not found at {SHARED_DATA} (set BENCH_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_data_cpu() -> Path:
    """The real GLUE training rows sized for CPU runs, beside ../shared/data."""
    if not SHARED_DATA_CPU.is_dir():
        pytest.skip(f"real CPU-sized training rows not found at {SHARED_DATA_CPU}")
    return SHARED_DATA_CPU


@pytest.fixture(scope="session")
def minilm():
    """The pretrained MiniLM encoder (the test extras install it), loaded once."""
    from bench.pipeline.runner import cached_backbone

    return cached_backbone("minilm")
