"""Livepeer's AI gateway, `POST /llm` (livepeer/go-livepeer, with livepeer/ai-runner behind it).

Derived from go-livepeer `server/ai_mediaserver.go` `LivepeerServer.LLM` (commit 176aa415): for
a stream it writes `data: <json.Marshal(chunk)>\n\n` per chunk and stops after the chunk whose
`finish_reason` is set: no `data: [DONE]`. The chunks are the runner's, re-marshalled as
`worker.LLMResponse` (`ai/worker/runner.gen.go`: Go field order choices, created, id, model,
usage; `finish_reason` omitted until set) by `server/ai_process.go` `handleSSEStream`; when the
orchestrator's stream closes early the gateway just ends the body. Errors before the stream:
`respondJsonError` -> `{"error": {"message"}}` + "\n", 503 "Service Unavailable Error" when no
orchestrator is free (`server/handlers.go` `handleAPIError`).
The runner (ai-runner `runner/src/runner/pipelines/llm.py` `LLMPipeline.generate`, commit
50a742ce) puts a running `usage` on every chunk and ends with an empty delta carrying
`finish_reason: "stop"` and the same totals. It counts `len(tokenizer.encode(delta))` a chunk;
a tokenizer that adds a BOS token per call would double that count: these streams assume it
does not.
"""

from __future__ import annotations

from monitor.core.result import Outcome
from tests.conformance.corpus import Fixture, load

SOURCE = "livepeer/go-livepeer server/ai_mediaserver.go LivepeerServer.LLM @176aa415; " \
         "livepeer/ai-runner runner/src/runner/pipelines/llm.py @50a742ce"

FIXTURES = (
    Fixture("livepeer-gateway-llm", "livepeer", SOURCE, load("livepeer-gateway-llm"),
            tokens=9, text="Seventeen plus twenty-five equals 42.", path="/llm"),
    Fixture("livepeer-gateway-cut", "livepeer", SOURCE + " (orchestrator stream closed)",
            load("livepeer-gateway-cut"), outcome=Outcome.DISCONNECT, tokens=4,
            error="finish_reason", path="/llm"),
    Fixture("livepeer-gateway-503", "livepeer", SOURCE + "; server/handlers.go handleAPIError",
            load("livepeer-gateway-503"), outcome=Outcome.HTTP_ERROR, tokens=None,
            token_source=None, error="Service Unavailable Error", status=503,
            headers={"Content-Type": "application/json"}, path="/llm"),
)
