"""The corpus: one module per server, each naming the source its streams were derived from."""

from __future__ import annotations

from tests.conformance import toolcalls
from tests.conformance.corpus import Fixture
from tests.conformance.servers import (
    litellm,
    livepeer,
    llamacpp,
    ollama,
    openrouter,
    sglang,
    tgi,
    vllm,
)

FIXTURES: tuple[Fixture, ...] = (
    *vllm.FIXTURES, *sglang.FIXTURES, *llamacpp.FIXTURES, *tgi.FIXTURES, *ollama.FIXTURES,
    *litellm.FIXTURES, *openrouter.FIXTURES, *livepeer.FIXTURES,
    # streamed tool calls (vllm-tool-call is vllm's own)
    *(tf.fixture for tf in toolcalls.FIXTURES if tf.fixture.name != "vllm-tool-call"),
)
