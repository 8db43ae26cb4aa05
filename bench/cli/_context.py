"""The object every command receives: settings, and the registry loaded on first use."""

from __future__ import annotations

from functools import cached_property

from bench.registry import Registry, load_registry
from bench.settings import Settings


class AppContext:
    """Settings plus lazily loaded shared state for the commands."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def registry(self) -> Registry:
        """The shipped models.yaml merged with the user's overlays."""
        return load_registry(self.settings.overlays)
