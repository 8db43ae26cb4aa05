"""`python -m serve.tiny.pinned_main GENERATOR FOLDER SEED STEPS`: one pinned build (serve.tiny.pinned starts
it in the pinned environment and reads its lines)."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

from serve.tiny.build import BUILDERS
from serve.tiny.pinned import emit, numerics, say


def main(argv: list[str]) -> int:
    """Entry point of the subprocess: GENERATOR FOLDER SEED STEPS (0: the recipe's)."""
    generator, folder, seed, steps = argv[0], Path(argv[1]), int(argv[2]), int(argv[3])
    with contextlib.redirect_stdout(sys.stderr):  # library prints must not look like our lines
        info = BUILDERS[generator](folder, seed, say, steps or None)
    info["numerics"] = numerics()
    emit("result", json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
