"""Errors raised by the serve package.

ServeError
├── ModelBuildError        a builtin model could not be built
├── PullError              a hub download failed
│   ├── GatedModelError    the repo is gated and no token is set
│   └── DiskSpaceError     not enough free disk for the download
├── ServerStartError       a backend did not become ready (log tail and hint attached)
│   └── PortInUseError     the port is taken
├── ServerDiedError        the engine exited after it was ready
├── EngineNotFound         no vLLM interpreter could be found
├── ModelDoesNotFit        the fit check found too little memory for weights + KV cache
└── InvalidServeOption     a serve option that cannot work here (e.g. --gpus names a missing GPU)
"""

from __future__ import annotations


class ServeError(Exception):
    """Root of every error the serve package raises."""


class ModelBuildError(ServeError):
    """A builtin model could not be built."""


class PullError(ServeError):
    """A download from the model hub failed."""

    def __init__(self, message: str, *, repo: str = "") -> None:
        super().__init__(message)
        self.repo = repo


class GatedModelError(PullError):
    """The repo is gated and HF_TOKEN is missing or lacks access."""


class DiskSpaceError(PullError):
    """Not enough free disk space for the files to download."""


class ServerStartError(ServeError):
    """A server did not become ready; carries the last log lines and a hint."""

    def __init__(self, message: str, *, log_tail: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail
        self.hint = hint


class PortInUseError(ServerStartError):
    """The requested host:port is already bound."""


class ServerDiedError(ServeError):
    """The engine process exited after it was ready."""

    def __init__(self, message: str, *, returncode: int | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.log_tail = log_tail


class EngineNotFound(ServeError):
    """No vLLM interpreter was found (flag, env var, .venv-vllm, PATH)."""


class ModelDoesNotFit(ServeError):
    """Weights plus KV cache exceed the memory of the chosen devices."""


class InvalidServeOption(ServeError):
    """A serve option that cannot work on this machine or with this model."""

    def __init__(self, message: str, *, option: str) -> None:
        super().__init__(message)
        self.option = option
