"""Incremental Server-Sent Events parser (WHATWG EventSource framing), bytes in, events out.

Feed it whatever a socket read returned: events may split at any byte, lines may end in
`\\n`, `\\r\\n` or `\\r`, `:` lines are comments/keep-alives, `data:` may or may not have a
space, several `data:` lines join with `\\n`, and UTF-8 sequences split across reads decode
correctly because only complete lines are decoded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEParser:
    __slots__ = ("_buf", "_data", "_event", "_id", "comments", "fields_seen", "invalid_utf8",
                 "unknown_lines")

    def __init__(self) -> None:
        self._buf = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self.comments = 0
        self.fields_seen = 0  # lines that were SSE fields: zero on a non-SSE body
        self.unknown_lines = 0  # lines that are not an SSE field we know (HTML, garbage)
        # Lines that were not UTF-8: decoded with U+FFFD as the spec says, and counted, since
        # a server that sends them breaks its own protocol (the probe calls that malformed).
        self.invalid_utf8 = 0

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        buf = self._buf + chunk if self._buf else chunk
        events: list[SSEEvent] = []
        if b"\r" not in buf:
            # Fast path (what servers send): LF-only lines, split in C; `data:` and blank
            # lines handled inline. Same results as the general loop below.
            lines = buf.split(b"\n")
            self._buf = lines.pop()  # the unterminated rest (b"" after a final LF)
            data = self._data
            for raw in lines:
                if raw.startswith(b"data:"):
                    value = raw[6:] if raw[5:6] == b" " else raw[5:]
                    try:
                        data.append(value.decode("utf-8"))
                    except UnicodeDecodeError:
                        self.invalid_utf8 += 1
                        data.append(value.decode("utf-8", errors="replace"))
                    self.fields_seen += 1
                elif raw:
                    self._line(raw, events)
                    data = self._data
                elif data:
                    events.append(SSEEvent(data[0] if len(data) == 1 else "\n".join(data),
                                           self._event or "message", self._id))
                    data = self._data = []
                    self._event = ""
                else:
                    self._event = ""
            return events
        start = 0
        n = len(buf)
        while start < n:
            nl = buf.find(b"\n", start)
            cr = buf.find(b"\r", start, nl if nl != -1 else n)
            if cr != -1:
                # A CR ends the line; if it is the last byte, a LF may follow in the next read.
                if cr == n - 1:
                    break
                end, nxt = cr, cr + 2 if buf[cr + 1] == 0x0A else cr + 1
            elif nl != -1:
                end, nxt = nl, nl + 1
            else:
                break
            self._line(buf[start:end], events)
            start = nxt
        self._buf = buf[start:]
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: a trailing line without terminator is processed; a half event is not
        dispatched (the spec discards it, and a truncated event must never count as delivered)."""
        events: list[SSEEvent] = []
        if self._buf:
            line = self._buf[:-1] if self._buf.endswith(b"\r") else self._buf
            self._buf = b""
            self._line(line, events)
        self._data = []
        return events

    @property
    def pending(self) -> bool:
        """Bytes or an undispatched event are held: the stream stopped mid-event."""
        return bool(self._buf or self._data)

    def _line(self, raw: bytes, events: list[SSEEvent]) -> None:
        if not raw:
            if self._data:
                events.append(SSEEvent("\n".join(self._data), self._event or "message", self._id))
            self._data = []
            self._event = ""
            return
        if raw[0] == 0x3A:  # ':'
            self.comments += 1
            return
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.invalid_utf8 += 1
            line = raw.decode("utf-8", errors="replace")
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\x00" not in value:
                self._id = value
        elif name == "retry":
            pass
        else:
            self.unknown_lines += 1
            return
        self.fields_seen += 1
