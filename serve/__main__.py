"""`python -m serve`: run one hf or mock server from the typed spec its parent put in the environment.

serve.spawn starts it this way, in its own process group, so that a server never shares a load
generator's process. LLMBENCH_SERVE_BACKEND names the backend (hf or mock), LLMBENCH_SERVE_SPEC holds its
spec as JSON, LLMBENCH_SERVE_API_KEY the key (never in the JSON or on the command line), and once the
server answers to connections the URL it bound is written to LLMBENCH_SERVE_READY_FILE. SIGINT/SIGTERM stop
it. Exit status 2: no or an invalid spec; 1: the server could not start (the reason on stderr).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from pydantic import ValidationError

from serve.errors import ServeError, ServerStartError
from serve.process import ready_line
from serve.spawn import BACKEND_ENV, KEY_ENV, READY_ENV, SPEC_ENV, child_spec, write_ready_file


def main() -> None:
    """Serve until a signal; see the module docstring for the environment and the exit status."""
    backend, raw, ready = (os.environ.get(k) for k in (BACKEND_ENV, SPEC_ENV, READY_ENV))
    if not backend or not raw or not ready:
        print(f"error: set {BACKEND_ENV}, {SPEC_ENV} and {READY_ENV} (see serve.spawn)", file=sys.stderr)
        sys.exit(2)
    try:
        spec = child_spec(backend, raw, os.environ.get(KEY_ENV))
    except (ValidationError, ValueError) as exc:
        print(f"error: invalid {backend} spec in {SPEC_ENV}: {exc}", file=sys.stderr)
        sys.exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    model = getattr(spec, "served_model_name", None) or getattr(spec, "model", "")

    def on_ready(url: str) -> None:
        write_ready_file(Path(ready), url)
        print(ready_line(url, str(model), backend), flush=True)  # in the log, as `llmbench serve` prints it

    try:
        if backend == "hf":
            from serve.hf.server import HfServeSpec, serve_hf

            assert isinstance(spec, HfServeSpec)
            serve_hf(spec, on_ready)
        else:
            from serve.mock.launch import serve_mock
            from serve.specs import MockSpec

            assert isinstance(spec, MockSpec)
            serve_mock(spec, on_ready)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, ServerStartError) and exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
