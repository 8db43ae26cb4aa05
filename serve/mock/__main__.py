"""`python -m serve.mock`: run one mock server from a MockSpec given as JSON in LLMBENCH_MOCK_SPEC.

The load generator starts mock targets this way, so that the server never shares its process. The key,
if any, comes in LLMBENCH_MOCK_API_KEY (never in the JSON, never on the command line). Prints one
`ready: URL/v1 model=M backend=mock` line once bound; SIGINT/SIGTERM stop it.
"""

from __future__ import annotations

import os
import sys

from pydantic import SecretStr

from serve.mock.launch import serve_mock
from serve.process import ready_line
from serve.specs import MockSpec

SPEC_ENV = "LLMBENCH_MOCK_SPEC"
KEY_ENV = "LLMBENCH_MOCK_API_KEY"


def main() -> None:
    """Serve until a signal; exit 2 when the spec is missing or invalid."""
    raw = os.environ.get(SPEC_ENV)
    if not raw:
        print(f"error: set {SPEC_ENV} to a MockSpec as JSON", file=sys.stderr)
        sys.exit(2)
    spec = MockSpec.model_validate_json(raw)
    key = os.environ.get(KEY_ENV)
    if key:
        spec = spec.model_copy(update={"api_key": SecretStr(key)})

    def on_ready(url: str) -> None:
        print(ready_line(url, spec.model, "mock"), flush=True)

    serve_mock(spec, on_ready)


if __name__ == "__main__":
    main()
