"""Errors raised by the quantize package.

QuantizeError
└── UnsupportedQuantization   the method cannot run on this device or model
"""

from __future__ import annotations


class QuantizeError(Exception):
    """Root of every error the quantize package raises."""


class UnsupportedQuantization(QuantizeError):
    """The quantization method cannot run here (device, model shape or missing library)."""

    def __init__(self, message: str, *, method: str) -> None:
        super().__init__(message)
        self.method = method
