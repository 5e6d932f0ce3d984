"""Tool calls as OpenAI-compatible servers send them: streamed deltas merged, or whole messages.

Streaming (`choices[i].delta.tool_calls`, OpenAI's ChoiceDeltaToolCall): each element carries
`index`, the call it continues; the first fragment of a call has `id`, `type` and
`function.name`, later ones only `function.arguments`, a piece of one JSON string that the
client concatenates. Several calls (parallel tool calls) stream under their own indexes,
interleaved or one after the other. Servers differ in the details, and the merger accepts
what each real one sends (fixtures in tests/conformance/streams name their sources):
- vLLM and SGLang send `id`/`name` only on a call's first fragment (SGLang sends `null` for
  them afterwards, and `"arguments": ""` on the first); llama.cpp's server sends a header
  fragment (`id`, `type`, `name`, `"arguments": ""`) and then argument pieces.
- An element without `index` continues the call at its position in the list.
- A fragment that repeats the call's `id` or `name` adds nothing; a different `id` at an index
  that already has a complete call starts a new call (servers that send every call whole at
  index 0).
Non-streaming (`choices[0].message.tool_calls`): a list of whole calls. `arguments` must be
a string; a server that sends an object instead (SGLang's FunctionResponse allows it) has it
serialised, and `arguments_object` says so, since the API reference says string.

The merger is pure (no I/O), so tests can drive it with any fragments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from probes import shape
from probes.shape import Path, ProtocolError

MAX_CALLS = 64  # more calls than this in one answer is not a protocol we read
MAX_ARGUMENT_CHARS = 1 << 20


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One complete call as the client sees it at the end of the answer."""

    index: int
    id: str | None
    name: str
    arguments: str  # the JSON text, as sent (grading parses it)
    arguments_object: bool = False  # the server sent an object, not a string


@dataclass(slots=True)
class _Partial:
    index: int
    id: str | None = None
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    size: int = 0
    arguments_object: bool = False


class ToolCallMerger:
    """The tool calls of one choice, merged fragment by fragment."""

    def __init__(self) -> None:
        self._calls: dict[int, _Partial] = {}
        self.fragments = 0

    def feed(self, deltas: object, path: Path = ("tool_calls",)) -> None:
        """Merge one delta's `tool_calls` list; ProtocolError when it is not the protocol."""
        if deltas is None:
            return
        if not isinstance(deltas, list):
            raise shape.wrong(path, deltas, "a list")
        for position, raw in enumerate(deltas):
            at = (*path, position)
            d = shape.obj(raw, at)
            index = d.get("index", position)
            if index is None:
                index = position
            if isinstance(index, bool) or not isinstance(index, int) or not index >= 0:
                raise shape.wrong((*at, "index"), index, "a count (an integer from 0)")
            call_id = shape.opt_str(d, "id", at)
            function = shape.opt_obj(d, "function", at) or {}
            name = shape.opt_str(function, "name", (*at, "function"))
            arguments = function.get("arguments")
            self.fragments += 1
            call = self._calls.get(index)
            if call is not None and call_id and call.id and call_id != call.id and call.name:
                index = max(self._calls) + 1  # a whole new call sent at a used index
                call = None
            if call is None:
                if len(self._calls) >= MAX_CALLS:
                    raise ProtocolError(f"more than {MAX_CALLS} tool calls in one answer")
                call = self._calls[index] = _Partial(index)
            if call_id and not call.id:
                call.id = call_id
            if name and name != call.name:
                call.name += name  # a name streamed in pieces (the same name again: nothing)
            self._add_arguments(call, arguments, (*at, "function", "arguments"))

    @staticmethod
    def _add_arguments(call: _Partial, arguments: object, path: Path) -> None:
        if arguments is None:
            return
        if isinstance(arguments, dict):
            text = json.dumps(arguments, ensure_ascii=False)
            call.arguments_object = True
        elif isinstance(arguments, str):
            text = arguments
        else:
            raise shape.wrong(path, arguments, "a string")
        call.size += len(text)
        if call.size > MAX_ARGUMENT_CHARS:
            raise ProtocolError(f"{shape.where(path)}: more than {MAX_ARGUMENT_CHARS} characters")
        call.arguments.append(text)

    def calls(self) -> tuple[ToolCall, ...]:
        """The merged calls, by index."""
        return tuple(ToolCall(c.index, c.id, c.name, "".join(c.arguments), c.arguments_object)
                     for _, c in sorted(self._calls.items()))


def message_calls(message: dict[str, Any], path: Path = ("choices", 0, "message")
                  ) -> tuple[ToolCall, ...]:
    """The tool calls of a whole (non-streamed) message: `message.tool_calls`."""
    raw = shape.opt_list(message, "tool_calls", path)
    if not raw:
        return ()
    merger = ToolCallMerger()
    # Whole calls carry no index in OpenAI's non-streaming shape: their position is theirs.
    merger.feed([{**c, "index": i} if isinstance(c, dict) else c for i, c in enumerate(raw)],
                (*path, "tool_calls"))
    return merger.calls()
