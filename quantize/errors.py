"""Errors raised by the quantize package.

QuantizeError
├── UnknownMethod             the method name is not one llmbench knows (lists the valid ones)
├── UnsupportedQuantization   the method cannot run on this device or model
├── OutputExists              the output folder exists and --force was not given
├── NotEnoughDisk             too little free disk for the output (numbers attached)
├── SourceNotFound            the source checkpoint folder is missing or incomplete
├── QuantToolNotFound         the llm-compressor venv (.venv-quant) is missing
└── QuantizeFailed            the tool ran and failed (its last log lines attached)
"""

from __future__ import annotations


class QuantizeError(Exception):
    """Root of every error the quantize package raises."""


class UnknownMethod(QuantizeError):
    """The method is not one of the known ones."""

    def __init__(self, method: str, valid: list[str]) -> None:
        super().__init__(f"unknown quantization method {method!r}; valid methods: {', '.join(valid)}")
        self.method = method
        self.valid = valid


class UnsupportedQuantization(QuantizeError):
    """The quantization method cannot run here (device, model shape or missing library)."""

    def __init__(self, message: str, *, method: str) -> None:
        super().__init__(message)
        self.method = method


class OutputExists(QuantizeError):
    """The output folder already exists; --force replaces it."""

    def __init__(self, path: str) -> None:
        super().__init__(f"the output folder {path} already exists; pass --force to replace it")
        self.path = path


class NotEnoughDisk(QuantizeError):
    """Too little free disk space where the checkpoint goes (bytes)."""

    def __init__(self, message: str, *, needed_bytes: int, free_bytes: int, path: str) -> None:
        super().__init__(message)
        self.needed_bytes = needed_bytes
        self.free_bytes = free_bytes
        self.path = path


class SourceNotFound(QuantizeError):
    """The source checkpoint is not where the spec says (config.json or weights missing)."""


class QuantToolNotFound(QuantizeError):
    """No interpreter with llm-compressor was found."""


class QuantizeFailed(QuantizeError):
    """The quantization tool ran and failed; carries the last lines of its log."""

    def __init__(self, message: str, *, log_tail: str = "", log_file: str | None = None) -> None:
        super().__init__(message)
        self.log_tail = log_tail
        self.log_file = log_file
