"""The Hugging Face Hub as bench meets it: quiet while it retries."""
from __future__ import annotations

import logging
from contextlib import contextmanager


@contextmanager
def quiet_hub_retries():
    """huggingface_hub's warnings held back while inside: where the Hub cannot be reached it retries
    each request five times, logging two lines a try ("Retrying in 8s [Retry 4/5]"), before the
    error that bench then says in one line (tasks/loading.py `hub_failure`; a backbone's
    `cannot_load`)."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
