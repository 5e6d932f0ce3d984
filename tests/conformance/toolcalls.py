"""Streamed tool calls as real servers send them: fixtures (tests/conformance/streams) with the
calls a client must reassemble from them, each naming the source it was derived from."""

from __future__ import annotations

from dataclasses import dataclass

from tests.conformance.corpus import Fixture, load

VLLM = ("vllm-project/vllm vllm/entrypoints/openai/chat_completion/serving.py "
        "OpenAIServingChat.chat_completion_stream_generator @006c49d4; DeltaToolCall "
        "(tests/conformance/servers/vllm.py)")
SGLANG = ("sgl-project/sglang python/sglang/srt/entrypoints/openai/serving_chat.py "
          "OpenAIServingChat._process_tool_call_stream @002897c2 (id and name on a call's first "
          "chunk only, null after; ChatCompletionStreamResponse.model_dump_json, protocol.py "
          "ToolCall/FunctionResponse @004c82e0; ids call_<24 hex> from _process_tool_call_id; "
          "function_call/base_format_detector.py parse_streaming_increment @00a35ca8: the name "
          "with parameters \"\" first, then json.dumps diffs of the arguments)")
LLAMACPP = ("ggml-org/llama.cpp tools/server/server-task.cpp task_result_state::update_chat_msg "
            "(a header diff with id and name per call, then argument diffs) and common/chat.cpp "
            "common_chat_msg_diff_to_json_oaicompat (index; id and type only with an id; name "
            "only when set; arguments always) @85c9a504")
LITELLM = ("BerriAI/litellm 1.105.7 litellm/proxy/proxy_server.py async_data_generator in front "
           "of the simulator (openai/ model with api_base): captured from the real proxy "
           "(tests/conformance/test_litellm_proxy.py), re-timed; every fragment keeps "
           "type: function")


# The timed probe reads these streams too (tests/conformance/test_corpus.py): a tool call is
# generated output (TTFT at its first fragment), the usage is the server's, there is no text,
# and the writes mark fragments, not whole tokens (no decode-rate truth).


@dataclass(frozen=True)
class ToolFixture:
    fixture: Fixture
    calls: tuple[tuple[str, str], ...]  # (name, arguments JSON text) the client must rebuild
    item: str | None = None  # the tools-v1 item whose right answer this is (graded ok)
    ids: bool = True  # every call has an id


FIXTURES = (
    ToolFixture(Fixture("vllm-tool-call", "openai", VLLM,
                        load("vllm-tool-call")),
                (("add", '{"a": 17, "b": 25}'),)),
    ToolFixture(Fixture("sglang-tool-calls-parallel", "openai", SGLANG,
                        load("sglang-tool-calls-parallel"), tokens=43, text="",
                        decode_truth=False),
                (("get_weather", '{"city": "Paris", "unit": "celsius"}'),
                 ("get_weather", '{"city": "Tokyo", "unit": "celsius"}')), item="parallel"),
    ToolFixture(Fixture("llamacpp-tool-calls", "openai", LLAMACPP, load("llamacpp-tool-calls"),
                        tokens=31, text="", decode_truth=False),
                (("get_weather", '{"city":"Paris","unit":"celsius"}'),
                 ("convert_currency",
                  '{"amount":250,"from_currency":"EUR","to_currency":"USD"}'))),
    ToolFixture(Fixture("litellm-tool-calls", "openai", LITELLM, load("litellm-tool-calls"),
                        tokens=36, text="", decode_truth=False),
                (("get_weather", '{"city": "Paris", "unit": "celsius"}'),
                 ("get_weather", '{"city": "Tokyo", "unit": "celsius"}')), item="parallel"),
)
