"""Hugging Face Text Generation Inference, the Messages API (huggingface/text-generation-inference).

Derived from `router/src/server.rs` `chat_completions` (commit db931fcf): every token is one
`ChatState::push` event (`router/src/chat.rs`, `create_event_from_stream_token`): no role-only
chunk, each delta is `{"role": "assistant", "content": <token>}`, the stop token is special so
its delta content is "" and it carries `finish_reason: "stop"`; with
`stream_options.include_usage` a chunk with `choices: []` and the usage follows; the stream
always ends with `data: [DONE]`. serde serialises `CompletionType` internally tagged, so
`"object"` comes first, and `id` is "" (`ChatCompletionChunk::new`). A generation error is
`InferError::into_openai_event`: `{"error": {"message", "http_status_code": 422}}`, then
`[DONE]`. axum frames each event as `data: <json>\n\n`.
"""

from __future__ import annotations

from monitor.core.result import Outcome
from tests.conformance.corpus import Fixture, load

SOURCE = "huggingface/text-generation-inference router/src/server.rs chat_completions; " \
         "router/src/chat.rs ChatState::push @db931fcf"

FIXTURES = (
    Fixture("tgi-chat", "openai", SOURCE, load("tgi-chat"),
            tokens=10, text="Seventeen plus twenty-five equals 42."),
    Fixture("tgi-error-midstream", "openai", SOURCE + "; infer/mod.rs into_openai_event",
            load("tgi-error-midstream"), outcome=Outcome.HTTP_ERROR, tokens=4,
            token_source="counted", error="CUDA out of memory"),
)
