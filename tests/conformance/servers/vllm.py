"""vLLM's OpenAI-compatible server (vllm-project/vllm).

Derived from `vllm/entrypoints/openai/chat_completion/serving.py`,
`OpenAIServingChat.chat_completion_stream_generator` (commit 006c49d4): the role chunk goes out
with the first engine output (so at the first token, not before), one chunk per engine step
(one token, or several with speculative decoding), the finish chunk carries the stop token's
empty delta, then with `include_usage` a chunk with `choices: []` and the usage, then
`data: [DONE]`; with `continuous_usage_stats` every chunk carries the running usage; an
exception becomes `data: {"error": ...}` followed by `data: [DONE]`
(`create_streaming_error_response`: `json.dumps` of ErrorResponse(error=ErrorInfo(message,
type, param, code))).
Bytes as pydantic serialises them (`model_dump_json(exclude_unset=True)`) with the models of
`chat_completion/protocol.py` (ChatCompletionStreamResponse, ChatCompletionResponseStreamChoice;
commit d5dba2d7) and `engine/protocol.py` (DeltaMessage, DeltaToolCall, UsageInfo; commit
040a2cc2), whose `handle_deprecated_reasoning_content` validator copies `reasoning` into
`reasoning_content`: that is why every delta names both.
"""

from __future__ import annotations

from monitor.core.result import Outcome
from tests.conformance.corpus import Fixture, load

SERVING = "vllm-project/vllm vllm/entrypoints/openai/chat_completion/serving.py " \
          "OpenAIServingChat.chat_completion_stream_generator @006c49d4"

FIXTURES = (
    Fixture("vllm-chat", "openai", SERVING, load("vllm-chat"),
            tokens=10, text="Seventeen plus twenty-five equals 42."),
    Fixture("vllm-speculative-continuous-usage", "openai",
            SERVING + "; running usage per chunk (continuous_usage_stats)",
            load("vllm-speculative-continuous-usage"),
            tokens=24, text="1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"),
    Fixture("vllm-error-midstream", "openai", SERVING + " (except Exception)",
            load("vllm-error-midstream"), outcome=Outcome.HTTP_ERROR,
            tokens=4, token_source="counted", error="EngineDeadError"),
    Fixture("vllm-reasoning", "openai", SERVING + "; DeltaMessage.reasoning",
            load("vllm-reasoning"), tokens=9, text="42"),
    Fixture("vllm-tool-call", "openai", SERVING + "; DeltaToolCall", load("vllm-tool-call"),
            tokens=7, text=""),
)
