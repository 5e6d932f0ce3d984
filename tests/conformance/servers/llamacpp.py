"""llama.cpp's server, llama-server (ggml-org/llama.cpp).

Derived from `tools/server/server-task.cpp` (commit 00efb3e1):
`server_task_result_cmpl_partial::to_json_oaicompat_chat` puts the role chunk
(`"content": null`) and the first token's chunk into one write; each later token is one chunk;
`server_task_result_cmpl_final::to_json_oaicompat_chat_stream` sends the finish chunk
(`delta: {}`) and, with `include_usage`, a `choices: []` chunk whose usage counts every decoded
token (`n_decoded`) and which carries the `timings` object (`result_timings::to_json`:
cache_n, prompt_n, prompt_ms, ..., predicted_per_second). Keys in insertion order (nlohmann
ordered_json, `dump(-1)`: compact), framed by `format_oai_sse`. The HTTP handler
(`handle_completions_impl` in tools/server/server.cpp) ends with `data: [DONE]`, or, when a
result is an error, with `data: {"error": {code, message, type}}` and no `[DONE]`.
"""

from __future__ import annotations

from monitor.core.result import Outcome
from tests.conformance.corpus import Fixture, load

SOURCE = "ggml-org/llama.cpp tools/server/server-task.cpp " \
         "server_task_result_cmpl_partial/final::to_json_oaicompat_chat(_stream) @00efb3e1"

FIXTURES = (
    Fixture("llamacpp-chat", "openai", SOURCE, load("llamacpp-chat"),
            tokens=10, text="Seventeen plus twenty-five equals 42."),
    Fixture("llamacpp-error-midstream", "openai", SOURCE + "; server.cpp format_oai_sse error",
            load("llamacpp-error-midstream"), outcome=Outcome.HTTP_ERROR, tokens=4,
            token_source="counted", error="KV cache is full"),
)
