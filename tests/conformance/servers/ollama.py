"""Ollama (ollama/ollama): the native `/api/chat` NDJSON stream and the `/v1` OpenAI shim.

Native, derived from `server/routes.go` (commit fb307609): `ChatHandler` sends one
`api.ChatResponse` per completion callback (`model`, `created_at` in UTC, `message` {role,
content, thinking}, `done`; Go's encoding/json in `api/types.go` field order), and the last one
has `done: true`, `done_reason` and the Metrics (durations in ns; `eval_count` is llama-server's
`predicted_n`, `llm/llama_server.go`), all through `streamResponse`: `json.Marshal` + "\n",
`Content-Type: application/x-ndjson`. An error after the first bytes is `{"error": "..."}` + "\n"
(json.Encoder) and the stream ends.
Shim, derived from `middleware/openai.go` `ChatWriter.writeResponse` and `openai/openai.go`
`toChunk`/`ToStreamChunks`/`FinishChunk`/`ToUsage`: no role-only chunk (the first chunk has the
role and the first token), `system_fingerprint: "fp_ollama"`, thinking as `delta.reasoning`, and
on the done response a finish chunk with `delta: {}`, a `choices: []` usage chunk when asked,
and `data: [DONE]`, written in one flush.
"""

from __future__ import annotations

from monitor.core.result import Outcome
from tests.conformance.corpus import Fixture, load

NATIVE = "ollama/ollama server/routes.go ChatHandler, streamResponse @fb307609"
SHIM = "ollama/ollama middleware/openai.go ChatWriter.writeResponse; openai/openai.go " \
       "toChunk, FinishChunk @fb307609"
NDJSON = {"Content-Type": "application/x-ndjson"}

FIXTURES = (
    Fixture("ollama-chat", "ollama", NATIVE, load("ollama-chat"), tokens=10,
            text="Seventeen plus twenty-five equals 42.", headers=NDJSON, path="/api/chat"),
    Fixture("ollama-thinking", "ollama", NATIVE + " (message.thinking)", load("ollama-thinking"),
            tokens=9, text="42", headers=NDJSON, path="/api/chat"),
    Fixture("ollama-error-midstream", "ollama", NATIVE + " (gin.H error)",
            load("ollama-error-midstream"), outcome=Outcome.HTTP_ERROR, tokens=4,
            token_source="counted", error="unexpected EOF", headers=NDJSON, path="/api/chat"),
    Fixture("ollama-openai-shim", "openai", SHIM, load("ollama-openai-shim"), tokens=10,
            text="Seventeen plus twenty-five equals 42."),
    Fixture("ollama-openai-shim-reasoning", "openai", SHIM + " (delta.reasoning)",
            load("ollama-openai-shim-reasoning"), tokens=9, text="42"),
)
