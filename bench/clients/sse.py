"""A hand-written, incremental Server-Sent Events parser for streamed completions, and the run splitter.

Fed raw bytes as they are read, the parser returns the complete events they finish, as `(event, data)`
pairs of bytes (`event` is None when the block has no `event:` line). It handles events split across reads,
several events in one read, multi-line `data:`, comments and keep-alives, and LF, CRLF or CR line ends.
`data` stays bytes because `json.loads` takes bytes: no decode on the hot path.

Why a run splitter (`TextRun`): a server that writes many events at once (a fast server, or any server
under load) hands one read dozens of events that differ only in the text they carry, e.g. every content
chunk of a vLLM chat stream is
`data: {"id":"chatcmpl-1",...,"choices":[{"index":0,"delta":{"content":"TEXT"},...}]}`. Parsing each one
costs a Python loop turn and a regex (or json.loads) per event. Once a stream has shown one such event,
checked by json.loads, its bytes before and after TEXT are known; `bytes.split` on "suffix, blank line,
prefix" then cuts a whole read in one C call into the events before the run, the texts of the run, and the
events after it. Each text between two separators is a whole event of the known shape exactly when it holds
no quote, backslash, line end or control byte (then it is also the JSON string's value), which one regex
search over the texts checks; otherwise the read is parsed event by event. Every event of one read was
read at the same instant, so the per-event times are the same either way.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from itertools import repeat
from typing import Any

Event = tuple[bytes | None, bytes]

_DATA = b"data: "
_EVENT = b"event: "
# A byte that cannot stand for itself inside a JSON string (quote, backslash, control bytes, line ends).
_NOT_PLAIN = re.compile(rb'["\\\x00-\x1f]')


class SSEParser:
    """Incremental SSE parser: `feed(bytes)` returns the events completed by those bytes."""

    __slots__ = ("_buf", "_skip_lf")

    def __init__(self) -> None:
        self._buf = b""
        self._skip_lf = False

    @property
    def pending(self) -> bytes:
        """Bytes received but not yet part of a complete event (non-empty at a truncated end)."""
        return self._buf

    def feed(self, data: bytes) -> list[Event]:
        """Add bytes read from the stream; return the events they complete, in order."""
        return parse_region(self.region(data))

    def region(self, data: bytes) -> bytes:
        """Add bytes read from the stream; return the complete event blocks they finish, as one bytes
        (LF line ends, blocks separated by one blank line, no trailing blank line); b"" when none."""
        if self._skip_lf:
            # The previous read ended with a CR, already taken as a line end: drop the LF of its CRLF.
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            self._skip_lf = buf[-1:] == b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        cut = buf.rfind(b"\n\n")
        if cut < 0:
            self._buf = buf
            return b""
        self._buf = buf[cut + 2 :]  # after the last blank line: an incomplete event, or b""
        return buf[:cut]


def parse_region(region: bytes) -> list[Event]:
    """The events of complete blocks (as `SSEParser.region` returns them), in order."""
    if not region:
        return []
    events: list[Event] = []
    append = events.append
    for block in region.split(b"\n\n"):
        # Fast path: the usual `data: {...}` block of one line and nothing else.
        if block[:6] == _DATA and b"\n" not in block:
            append((None, block[6:]))
            continue
        if block[:7] == _EVENT:  # Anthropic's usual `event: NAME` + `data: {...}` pair
            nl = block.find(b"\n")
            if block[nl + 1 : nl + 7] == _DATA and block.find(b"\n", nl + 1) < 0:
                append((block[7:nl], block[nl + 7 :]))
                continue
        if block:
            event = _parse_block(block)
            if event is not None:
                append(event)
    return events


def _parse_block(block: bytes) -> Event | None:
    """Parse one event block (its lines without the blank line); None when it carries no data."""
    name: bytes | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[:1] == b":":
            continue  # blank, or a comment / keep-alive
        field, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value
        # `id:` and `retry:` do not matter to a one-shot stream; unknown fields are ignored by the spec.
    if not data:
        return None
    return name, b"\n".join(data)


# `check(obj, text)`: True when the parsed event `obj` is a plain text event carrying exactly `text`.
ShapeCheck = Callable[[Any, str], bool]


class TextRun:
    """The repeated shape of one stream's text events: the bytes of an event before and after its text.

    A run of such events reads `... suffix \n\n prefix TEXT suffix \n\n prefix TEXT suffix ...`. Splitting on
    the separator `suffix \n\n prefix` itself would cost a fresh search setup for every event (bytes.split
    with a long needle), so the split is on `cut`, the separator's last few bytes, and every piece in the
    run must end with `rest`, the separator's other bytes, which one C-level `removesuffix` per piece
    strips and a length sum checks.
    """

    __slots__ = ("cut", "prefix", "rest", "suffix")

    def __init__(self, prefix: bytes, suffix: bytes, cut: bytes) -> None:
        self.prefix = prefix
        self.suffix = suffix
        sep = suffix + b"\n\n" + prefix
        self.cut = cut  # the separator's last bytes, found once in it
        self.rest = sep[: -len(cut)]

    @classmethod
    def learn(cls, region: bytes, pattern: re.Pattern[bytes], check: ShapeCheck) -> TextRun | None:
        """The shape of the first event in `region` that `pattern` matches (its group 1 is the text) and
        that json.loads confirms with `check`; None when there is none."""
        match = pattern.search(region)
        if match is None:
            return None
        before = region.rfind(b"\n\n", 0, match.start())
        start = 0 if before < 0 else before + 2
        end = region.find(b"\n\n", match.end())
        block = region[start:] if end < 0 else region[start:end]
        events = parse_region(block)
        text = match.group(1)
        if len(events) != 1 or _NOT_PLAIN.search(text) is not None:
            return None
        try:
            if not check(json.loads(events[0][1]), text.decode()):
                return None
        except ValueError:
            return None
        prefix, suffix = block[: match.start(1) - start], block[match.end(1) - start :]
        sep = suffix + b"\n\n" + prefix
        for size in (16, 32, 64):  # a short cut splits fastest; it must occur once in the separator
            cut = prefix[-size:]
            if sep.count(cut) == 1:
                return cls(prefix, suffix, cut)
        return None

    def split(self, region: bytes) -> list[bytes | list[bytes]] | None:
        """`region` in stream order as blocks (bytes, to parse event by event) and runs of plain texts
        (lists of each event's text), alternating, blocks first and last; None when it holds no whole
        event of this shape between two others."""
        cut, rest = self.cut, self.rest
        pieces = region.split(cut)
        last = len(pieces) - 1
        if last < 2:
            return None
        size = len(rest)
        middle = pieces[1:last]
        texts = list(map(bytes.removesuffix, middle, repeat(rest, last - 1)))
        joined = b"".join(texts)
        # The usual read: one run to the last event but one, from the first event or (when the read
        # starts with a text event, its separator in the read before) from the second. Every middle
        # piece ended with `rest` exactly when the texts are `size` bytes shorter each (the middle
        # pieces' length is what the region holds besides the first, the last and the cuts).
        middle_bytes = len(region) - len(pieces[0]) - len(pieces[last]) - len(cut) * last
        if len(joined) == middle_bytes - size * (last - 1):
            if pieces[0].endswith(rest):
                if _plain(joined):
                    return [pieces[0][:-size] + self.suffix, texts, self.prefix + pieces[last]]
            elif last > 2 and _plain(joined[len(texts[0]) :]):
                head = pieces[0] + cut + texts[0] + self.suffix
                return [head, texts[1:], self.prefix + pieces[last]]
        ends = list(map(bytes.endswith, pieces, repeat(rest, last)))  # the cut after piece i separates
        # Some event between two separators is not plain (an escape, reasoning, a comment): runs of
        # plain events around it, and its blocks (and their neighbours' ends) parsed one by one.
        good = [ends[i] and ends[i + 1] and _plain(texts[i]) for i in range(last - 1)]  # piece i + 1
        out: list[bytes | list[bytes]] = []
        start = 0  # the first piece of the blocks before the next run
        i = 1
        while i < last:
            if not good[i - 1]:
                i += 1
                continue
            first = i
            while i < last and good[i - 1]:
                i += 1
            blocks = cut.join(pieces[start:first])[:-size] + self.suffix
            out += [self.prefix + blocks if start else blocks, texts[first - 1 : i - 1]]
            start = i
        if not out:
            return None
        out.append(self.prefix + cut.join(pieces[start:]))
        return out


def _plain(text: bytes) -> bool:
    """True when `text` is a JSON string's value as it stands (no quote, escape or control byte) and UTF-8."""
    if _NOT_PLAIN.search(text) is not None:
        return False
    if text.isascii():
        return True
    try:
        text.decode()
    except UnicodeDecodeError:
        return False  # the event-by-event parse reports it
    return True
