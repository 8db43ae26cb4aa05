"""What every streaming client shares: configuration, the aiohttp session, and `send` with its error mapping.

A protocol module supplies three things: the request body, a per-request `Stream` that consumes the bytes
read from the response (stamping times on the record), and `check()`. `send` never raises for a failed
request and never retries: an HTTP error, a timeout, a broken connection or a malformed stream becomes a
RequestRecord with its status, `error_kind` and `error_text`.

Cancellation: when the task running `send` is cancelled (Ctrl-C, end of a duration-bound run), `send`
*returns* a Status.CANCELLED record holding what was measured so far instead of re-raising, so a load
generator that cancels its in-flight tasks gets their partial data from `await task`. Run each `send` in its
own task: a caller whose own cancellation must propagate should not await `send` inline.

The API key is sent in a header and used to redact error text; it is never stored on a record, never in
an exception message, and hidden from the config's repr.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple, Protocol
from urllib.parse import urlsplit

import aiohttp

from bench import __version__
from bench.errors import NotAnLlmServerError, TargetError
from bench.records import DEFAULT_TIMEOUT_S, GenRequest, RequestRecord, ServerKind, Status

# Servers known to accept vLLM's sampling extras (ignore_eos, min_tokens): vLLM itself, and llmbench's own
# hf backend and mock (non-strict). Real OpenAI/Anthropic reject them; an unknown server might.
EXTRAS_SERVERS: frozenset[str] = frozenset({"vllm", "llmbench"})
ERROR_TEXT_CHARS = 500  # server text kept on a record
SHOWN_TEXT_CHARS = 200  # server text quoted in a message before a run
CHECK_TIMEOUT_S = 30.0  # the longest check() waits for an answer (s); a shorter --timeout wins
# Headers whose values are credentials: never echoed in error text.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key"})
KEY_HOW = "pass --api-key-env VAR, naming the environment variable that holds it"
NOT_LLM_FIX = (
    "give the base URL of an OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1 (the URL that "
    "`llmbench serve NAME` prints on its ready: line)"
)
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def no_answer(what: str | None, seconds: float, *, flag: str | None = "--timeout") -> str:
    """The message for a server that accepted the connection and said nothing in time."""
    raise_it = f"raise {flag} or " if flag else ""
    head = f"{what}: " if what else ""
    return (
        f"{head}no answer within {seconds:g} s: the server may be overloaded or hung; "
        f"{raise_it}check the server"
    )


def path_of(url: str) -> str:
    """The path of a URL (`http://h:1/v1/models` → `/v1/models`)."""
    return urlsplit(url).path or "/"


def content_type(value: str | None) -> str:
    """`text/html; charset=utf-8` → `text/html`; 'no content type' when there is none."""
    kind = (value or "").split(";")[0].strip().lower()
    return kind or "no content type"


def is_json(value: str | None) -> bool:
    """True for application/json and the +json types."""
    kind = content_type(value)
    return kind == "application/json" or kind.endswith("+json")


def server_text(raw: bytes | str, limit: int = SHOWN_TEXT_CHARS) -> str:
    """Text a server sent, fit to quote: HTML tags stripped, whitespace collapsed, at most `limit` chars."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if "<" in text and ">" in text:
        text = html.unescape(_TAG.sub(" ", text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def stamp_token_chunk(rec: RequestRecord, now: float, *, visible: bool) -> None:
    """Record a chunk that carried generated text at `now` (perf_counter s); sets TTFT and first content."""
    rec.token_chunk_s.append(now)
    if rec.first_token_s is None:
        rec.first_token_s = now
    if visible and rec.first_content_s is None:
        rec.first_content_s = now


def stamp_text_run(rec: RequestRecord, texts: list[bytes], joined: bytes, now: float) -> None:
    """Record plain visible-text events read at `now` (bench.clients.sse.TextRun.split): one chunk time
    per non-empty text (an empty one is not a token chunk), first token and content, the text's bytes."""
    tokens = len(texts) - texts.count(b"")
    if tokens:
        rec.token_chunk_s.extend([now] * tokens)
        if rec.first_content_s is None:
            rec.first_content_s = now
            if rec.first_token_s is None:
                rec.first_token_s = now
    rec.output_bytes = (rec.output_bytes or 0) + len(joined)  # no escapes: the text's own bytes


def text_bytes(*parts: Any) -> int:
    """UTF-8 bytes of the text parts of one chunk (None and non-text parts count 0)."""
    return sum(len(p.encode()) for p in parts if isinstance(p, str))


class Counter(Protocol):
    """Counts tokens of generated text when the server reports no usage (bench.tokenizer.TextTokenizer)."""

    approximate: bool

    def count(self, text: str, *, special: bool = False) -> int: ...


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """How to reach one endpoint. `api_key` is the key itself (read by the caller from `api_key_env`)."""

    base_url: str  # e.g. http://127.0.0.1:8000/v1 or https://api.anthropic.com (/v1 is added when missing)
    model: str
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None  # only named in error messages
    server_kind: ServerKind = "generic"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may carry credentials
    timeout_s: float = DEFAULT_TIMEOUT_S  # per request, whole stream included (s)
    check_timeout_s: float | None = None  # for check() (s); None: timeout_s, at most CHECK_TIMEOUT_S
    tokenizer: Counter | None = None  # counts output tokens when the server gives no usage
    keep_text: bool = True  # keep output_text / reasoning_text on records
    trust_env: bool = False  # use HTTP(S)_PROXY from the environment (a proxy adds latency; off by default)
    # Ask OpenAI-style servers for each token's logprob with N alternatives (0: none); None: not asked
    logprobs: int | None = None

    @property
    def sends_extras(self) -> bool:
        """True when ignore_eos / min_tokens may be sent to this server."""
        return self.server_kind in EXTRAS_SERVERS

    @property
    def check_timeout(self) -> float:
        """How long check() waits for each answer (s)."""
        if self.check_timeout_s is not None:
            return self.check_timeout_s
        return min(self.timeout_s, CHECK_TIMEOUT_S)

    @property
    def secrets(self) -> list[str]:
        """The key and the credential header values: text that must never be echoed."""
        found = [v for k, v in self.headers.items() if k.lower() in SECRET_HEADERS and v]
        found += [v.split(" ", 1)[1] for v in found if " " in v]  # `Bearer KEY`: the key alone too
        return [s for s in [self.api_key, *found] if s]


class StreamError(Exception):
    """A stream that is malformed or reports an error; `kind` becomes the record's error_kind."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind
        self.text = text


class Stream(Protocol):
    """Consumes one response body; stamps chunk times and usage on the record it was made with."""

    def feed(self, data: bytes, now: float) -> None: ...

    def keep_text(self) -> None:
        """Put the text received so far on the record."""
        ...

    def close(self) -> None:
        """End of body: raise StreamError if the stream stopped before its end marker."""
        ...


def normalize_base_url(url: str) -> str:
    """Strip a trailing slash or endpoint path; add /v1 to a bare host (both protocols serve under /v1)."""
    url = url.rstrip("/")
    for suffix in ("/chat/completions", "/completions", "/messages"):
        if url.endswith(suffix):
            url = url[: -len(suffix)]
    _scheme, _, rest = url.partition("://")
    if "/" not in rest:
        url += "/v1"
    return url


class BaseClient:
    """Session handling and the send loop; protocol modules subclass it."""

    api: ClassVar[str]
    endpoint: ClassVar[str]

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self.base_url = normalize_base_url(config.base_url)
        self.url = self.base_url + self.endpoint
        self._session: aiohttp.ClientSession | None = None
        self._headers = {
            "Content-Type": "application/json",
            "User-Agent": f"llmbench/{__version__}",
            **self.auth_headers(),
            **dict(config.headers),
        }

    @property
    def keeps_text(self) -> bool:
        """Streams collect generated text when records keep it or a real tokenizer must count it."""
        tok = self.config.tokenizer
        return self.config.keep_text or (tok is not None and not tok.approximate)

    @property
    def supports_ignore_eos(self) -> bool:
        """False when requests' ignore_eos is dropped because the server would reject it."""
        return self.config.sends_extras

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    def sampling_fields(self, request: GenRequest, body: dict[str, Any]) -> dict[str, Any]:
        """Add the sampling fields every protocol shares to `body`: temperature, vLLM's extras (only where
        the server accepts them: `ignore_eos` with `min_tokens`, so the output length is fixed) and the
        request's own extra body, which wins."""
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.ignore_eos and self.config.sends_extras:
            body["ignore_eos"] = True
            body["min_tokens"] = request.max_tokens
        if request.extra_body:
            body.update(request.extra_body)
        return body

    def body(self, request: GenRequest) -> dict[str, Any]:
        raise NotImplementedError

    def stream(self, record: RequestRecord) -> Stream:
        raise NotImplementedError

    async def check(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> BaseClient:
        # limit=0: no client-side cap on concurrent connections; keep-alive reuses them across requests.
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        # The per-request timeout is applied by send() itself; aiohttp's default 300 s total must not apply.
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None), trust_env=self.config.trust_env
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("use the client as `async with client:` before sending")
        return self._session

    async def send(self, request: GenRequest, scheduled_s: float) -> RequestRecord:
        """Send one streamed request; every outcome, cancellation included, is a record (no retries)."""
        payload = json.dumps(self.body(request)).encode()
        session = self.session
        record = RequestRecord(request.request_id, Status.OK, scheduled_s, 0.0, 0.0)
        record.input_bytes = request.prompt_bytes()
        record.output_bytes = 0
        perf = time.perf_counter
        stream: Stream | None = None
        try:
            async with asyncio.timeout(self.config.timeout_s):
                record.start_s = perf()
                async with session.post(self.url, data=payload, headers=self._headers) as resp:
                    record.first_byte_s = perf()  # the status line and headers have arrived
                    record.http_status = resp.status
                    if resp.status != 200:
                        text = self.error_message(await resp.read())
                        if resp.status in (401, 403):
                            text = f"{self.key_hint()} (the server said: {text})"
                        raise StreamError(_status_kind(resp.status), text)
                    stream = self.stream(record)
                    feed = stream.feed
                    read = resp.content.readany
                    data = await read()
                    now = perf()
                    while data:
                        feed(data, now)
                        data = await read()
                        now = perf()
                    record.end_s = now  # end of body, as vLLM's client measures it
                    stream.close()
        except StreamError as exc:
            self._fail(record, Status.ERROR, exc.kind, exc.text)
        except TimeoutError:
            self._fail(record, Status.TIMEOUT, "timeout", self._timeout_text(record))
        except aiohttp.ClientError as exc:
            self._fail(record, Status.ERROR, "connection", f"{type(exc).__name__}: {exc}")
        except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError: a malformed stream
            self._fail(record, Status.ERROR, "protocol", f"malformed stream: {exc}")
        except (KeyError, TypeError, AttributeError, IndexError) as exc:  # JSON of an unexpected shape
            self._fail(
                record, Status.ERROR, "protocol", f"unexpected event shape: {type(exc).__name__}: {exc}"
            )
        except asyncio.CancelledError:
            self._fail(record, Status.CANCELLED, "cancelled", "cancelled before the response completed")
        if not record.end_s:
            record.end_s = perf()
        if stream is not None:
            stream.keep_text()  # partial text too, for an error, a timeout or a cancellation
        if record.start_s == 0.0:
            record.start_s = record.end_s
        self._finish_tokens(record)
        if not self.config.keep_text:
            record.output_text = record.reasoning_text = ""
        return record

    def _timeout_text(self, record: RequestRecord) -> str:
        seconds = self.config.timeout_s
        if record.first_byte_s is None:
            return no_answer(None, seconds)
        return (
            f"the answer did not complete within {seconds:g} s (it began after "
            f"{record.first_byte_s - record.start_s:.1f} s): the server may be overloaded or hung; "
            "raise --timeout or check the server"
        )

    def _fail(self, record: RequestRecord, status: Status, kind: str, text: str) -> None:
        record.end_s = time.perf_counter()
        record.status = status
        record.error_kind = kind
        record.error_text = self.redact(text)[:ERROR_TEXT_CHARS]

    def _finish_tokens(self, record: RequestRecord) -> None:
        """Usage from the server wins; else a real local tokenizer's count, labelled; else none."""
        if record.output_tokens is not None:
            record.tokens_from = "usage"
            return
        tok = self.config.tokenizer
        if tok is None or tok.approximate:
            return  # an estimate is not a token count: tokens_from stays "none"
        if record.output_text or record.reasoning_text:
            reasoning = tok.count(record.reasoning_text) if record.reasoning_text else 0
            record.output_tokens = tok.count(record.output_text) + reasoning
            if reasoning:
                record.reasoning_tokens = reasoning
            record.tokens_from = "tokenizer"
        elif record.ok and not record.token_chunk_s:
            record.output_tokens = 0  # an answer with no generated text at all
            record.tokens_from = "tokenizer"

    def redact(self, text: str) -> str:
        """Remove the API key (and credential header values) from text that may echo them."""
        for secret in self.config.secrets:
            text = text.replace(secret, "[REDACTED]")
        return text

    def error_message(self, raw: bytes, limit: int = ERROR_TEXT_CHARS) -> str:
        """The provider's error message from an error body (OpenAI, Anthropic, vLLM, FastAPI shapes); any
        other body (a web page, say) as plain text without its tags, at most `limit` characters."""
        text = raw.decode("utf-8", "replace").strip()
        try:
            obj = json.loads(text)
        except ValueError:
            return server_text(self.redact(text), limit) or "(empty body)"
        return server_text(self.redact(_message_of(obj) or text), limit)

    def key_hint(self) -> str:
        """What to do after a 401/403: which variable holds the key, or how to send one; never the key."""
        header = "`x-api-key: <key>`" if self.api == "anthropic" else "`Authorization: Bearer <key>`"
        if self.config.api_key_env:
            state = "is set" if self.config.api_key else "is not set"
            variable = self.config.api_key_env
            return f"check the key in the environment variable {variable} ({state}; sent as {header})"
        sent = sorted(k for k in self.config.headers if k.lower() in SECRET_HEADERS)
        if sent:
            return f"check the key sent in the {', '.join(sent)} header"
        if self.config.api_key:
            return f"check the API key given to the client (sent as {header})"
        return f"the server wants an API key: {KEY_HOW} (sent as {header})"

    async def get_json(self, url: str) -> Reply:
        """GET for check(): status, JSON (or None), body, content type; TargetError if unreachable."""
        return await self._request("GET", url, None)

    async def post_json(self, url: str, body: dict[str, Any]) -> Reply:
        """POST for check(): as get_json."""
        return await self._request("POST", url, json.dumps(body).encode())

    async def _request(self, method: str, url: str, data: bytes | None) -> Reply:
        seconds = self.config.check_timeout
        try:
            async with asyncio.timeout(seconds):
                async with self.session.request(method, url, data=data, headers=self._headers) as resp:
                    raw = await resp.read()
                    status = resp.status
                    kind = resp.headers.get("Content-Type")
        except TimeoutError as exc:
            shorter = seconds < CHECK_TIMEOUT_S  # only then does a larger --timeout wait longer
            raise TargetError(
                no_answer(f"{method} {url}", seconds, flag="--timeout" if shorter else None),
                url=url,
                model=self.config.model,
            ) from exc
        except aiohttp.ClientError as exc:
            raise TargetError(
                f"cannot reach {url} ({type(exc).__name__}: {self.redact(str(exc))}); start the server "
                "(e.g. `llmbench serve NAME`) or fix the target URL",
                url=url,
                model=self.config.model,
            ) from exc
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return Reply(status, parsed, raw, content_type(kind))

    def auth_error(self, url: str, status: int, raw: bytes) -> TargetError:
        """The TargetError for a 401/403 answer."""
        return TargetError(
            f"{url} rejected the request as unauthorized (HTTP {status}: "
            f"{self.error_message(raw, SHOWN_TEXT_CHARS)}); {self.key_hint()}",
            url=url,
            model=self.config.model,
        )

    def not_an_llm_server(self, *answers: tuple[str, Reply]) -> NotAnLlmServerError:
        """The error for a URL whose answers are not an OpenAI/Anthropic-style API's (a web page, say)."""
        said = "; ".join(f"{what} answered {r.status} {r.content_type}" for what, r in answers)
        api = "an Anthropic-compatible" if self.api == "anthropic" else "an OpenAI-compatible"
        return NotAnLlmServerError(
            f"{self.base_url} does not look like {api} server ({said})",
            url=self.base_url,
            model=self.config.model,
            fix=NOT_LLM_FIX,
        )


class Reply(NamedTuple):
    """What check() got back from one request."""

    status: int
    parsed: Any  # the body as JSON, None when it is not JSON
    raw: bytes
    content_type: str  # without parameters ('text/html'), or 'no content type'

    @property
    def is_api_answer(self) -> bool:
        """True when the body is JSON, as every LLM API's answers (errors included) are."""
        return self.parsed is not None or is_json(self.content_type)


def _status_kind(status: int) -> str:
    return f"http_{status}"


def _message_of(obj: Any) -> str | None:
    """The human message inside an error JSON of any common shape."""
    if not isinstance(obj, dict):
        return None
    error = obj.get("error")
    if isinstance(error, dict):
        message = error.get("message")
        kind = error.get("type")
        if isinstance(message, str):
            return f"{kind}: {message}" if isinstance(kind, str) and kind else message
    if isinstance(error, str):
        return error
    for key in ("message", "detail"):
        value = obj.get(key)
        if isinstance(value, str):
            return value
        if value is not None:
            return json.dumps(value)
    return None
