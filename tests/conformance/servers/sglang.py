"""SGLang's OpenAI-compatible server (sgl-project/sglang).

Derived from `python/sglang/srt/entrypoints/openai/serving_chat.py`,
`OpenAIServingChat._generate_chat_stream` (commit 002897c2): the role chunk is built on the
first output (the handler even waits for it before sending HTTP 200), content and
`reasoning_content` deltas through `sse_utils.build_sse_content` (msgspec structs
StreamDelta/StreamChoice/StreamChunk, compact JSON, None fields of the delta omitted,
`logprobs`/`finish_reason`/`matched_stop` always present; commit 06713058), a finish chunk per
choice with `matched_stop` (here Qwen's `<|im_end|>`, 151645), then with `include_usage` a
pydantic ChatCompletionStreamResponse with `choices: []` and UsageInfo (`prompt_tokens_details`,
`reasoning_tokens` included; protocol.py commit 004c82e0), then `data: [DONE]`.
Not read: `_generate_stream_content` itself; content chunks are assumed to go through
build_sse_content like the role and finish chunks.
"""

from __future__ import annotations

from tests.conformance.corpus import Fixture, load

SOURCE = "sgl-project/sglang python/sglang/srt/entrypoints/openai/serving_chat.py " \
         "OpenAIServingChat._generate_chat_stream @002897c2; sse_utils.build_sse_content"

FIXTURES = (
    Fixture("sglang-chat", "openai", SOURCE, load("sglang-chat"),
            tokens=10, text="Seventeen plus twenty-five equals 42."),
    Fixture("sglang-reasoning", "openai", SOURCE + " (reasoning_content)",
            load("sglang-reasoning"), tokens=9, text="42"),
)
