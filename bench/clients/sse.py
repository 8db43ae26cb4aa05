"""A hand-written, incremental Server-Sent Events parser for streamed completions.

Fed raw bytes as they are read, it returns the complete events they finish, as `(event, data)` pairs of
bytes (`event` is None when the block has no `event:` line). It handles events split across reads,
several events in one read, multi-line `data:`, comments and keep-alives, and LF, CRLF or CR line ends.
`data` stays bytes because `json.loads` takes bytes: no decode on the hot path.
"""

from __future__ import annotations

Event = tuple[bytes | None, bytes]

_DATA = b"data: "
_EVENT = b"event: "


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
        if self._skip_lf:
            # The previous read ended with a CR, already taken as a line end: drop the LF of its CRLF.
            self._skip_lf = False
            if data[:1] == b"\n":
                data = data[1:]
        buf = self._buf + data if self._buf else data
        if b"\r" in buf:
            self._skip_lf = buf[-1:] == b"\r"
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        blocks = buf.split(b"\n\n")
        self._buf = blocks.pop()  # after the last blank line: an incomplete event, or b""
        events: list[Event] = []
        append = events.append
        for block in blocks:
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
