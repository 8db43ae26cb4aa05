"""vLLM middleware that answers GET /llmbench/info (llmbench.serve-info/1) from inside the vLLM server.

This file runs in vLLM's own venv, not llmbench's: it imports only the standard library and starlette
(which vLLM brings). `llmbench serve` copies it next to the engine's config file, puts that folder on the
engine's PYTHONPATH and names `llmbench_vllm_info.info_middleware` in vLLM's `middleware` option; the
document itself comes in the LLMBENCH_SERVE_INFO environment variable, completed here with vLLM's version.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

INFO_PATH = "/llmbench/info"


def _document() -> bytes:
    info: dict[str, Any] = json.loads(os.environ.get("LLMBENCH_SERVE_INFO") or "{}")
    engine = dict(info.get("engine") or {})
    try:
        import vllm

        engine["version"] = str(getattr(vllm, "__version__", None) or engine.get("version"))
    except Exception:  # the info page must never break the server
        pass
    info["engine"] = engine
    return json.dumps(info, sort_keys=True).encode()


_BODY: list[bytes] = []


async def info_middleware(request: Any, call_next: Callable[[Any], Awaitable[Any]]) -> Any:
    """Serve the info document at INFO_PATH; pass every other request on untouched."""
    if request.method == "GET" and request.url.path == INFO_PATH:
        from starlette.responses import Response

        if not _BODY:
            _BODY.append(_document())
        return Response(_BODY[0], media_type="application/json")
    return await call_next(request)
