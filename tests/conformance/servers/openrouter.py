"""OpenRouter (closed source): derived from its documentation and its own client's schema.

openrouter.ai/docs/api-reference/streaming: while a request waits, SSE comments
`: OPENROUTER PROCESSING` keep the connection open; an error after streaming began arrives as
a data event with an `error` object and `finish_reason: "error"`, the HTTP status staying 200,
and ends the stream. docs/api-reference/errors: `{"error": {"code", "message", "metadata"}}`.
Chunk fields from OpenRouterTeam/ai-sdk-provider `src/chat/schemas.ts`
(`OpenRouterStreamChatCompletionChunkSchema`, commit 05b53006): `provider`, `delta.reasoning`,
`usage.cost`; `native_finish_reason` from its stream-choice model; the error metadata as a user
reported it (`Network connection lost.`, `provider_unavailable`, ai-sdk-provider issue 440).
The order of keys cannot be checked against a source.
"""

from __future__ import annotations

from monitor.core.result import Outcome
from tests.conformance.corpus import Fixture, load

SOURCE = "openrouter.ai/docs/api-reference/streaming; OpenRouterTeam/ai-sdk-provider " \
         "src/chat/schemas.ts @05b53006"

FIXTURES = (
    Fixture("openrouter-chat", "openai", SOURCE, load("openrouter-chat"), tokens=10,
            text="Seventeen plus twenty-five equals 42."),
    Fixture("openrouter-reasoning", "openai", SOURCE + " (delta.reasoning)",
            load("openrouter-reasoning"), tokens=9, text="42"),
    Fixture("openrouter-error-midstream", "openai", SOURCE + " (mid-stream error)",
            load("openrouter-error-midstream"), outcome=Outcome.HTTP_ERROR, tokens=4,
            token_source="counted", error="Network connection lost"),
)
