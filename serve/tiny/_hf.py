"""Lazy access to transformers, and silencing its tqdm bars: a library reports through callbacks."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def transformers_module() -> Any:
    """transformers, imported on first use (it is in the hf extra, and partly untyped)."""
    return importlib.import_module("transformers")


@contextmanager
def hf_progress_off() -> Iterator[None]:
    """Disable transformers' progress bars inside the block, restoring the caller's setting after."""
    hf_logging = transformers_module().utils.logging
    was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_on:
            hf_logging.enable_progress_bar()
