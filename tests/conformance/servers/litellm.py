"""The LiteLLM proxy (BerriAI/litellm, PyPI `litellm[proxy]==1.105.7`).

Captured from the real proxy on 127.0.0.1 (tests/conformance/test_litellm_proxy.py runs it in
CI) and re-timed: `litellm/proxy/proxy_server.py` `async_data_generator` frames each chunk as
`data: <json>\n\n`; the first chunk has the role and the first text, the finish chunk has
`delta: {}`, and the usage chunk keeps a choice, `choices: [{"index": 0, "delta": {}}]`, before
`data: [DONE]`. The model is a `mock_response`, which LiteLLM streams three characters a chunk
(`litellm/utils.py` `async_mock_completion_streaming_obj`): 13 chunks for 10 tokens, so no
write holds whole tokens and the decode rate has no ground truth here.
"""

from __future__ import annotations

from tests.conformance.corpus import Fixture, load

FIXTURES = (
    Fixture("litellm-proxy", "openai",
            "BerriAI/litellm 1.105.7 litellm/proxy/proxy_server.py async_data_generator "
            "(captured)", load("litellm-proxy"), tokens=10,
            text="Seventeen plus twenty-five equals 42.", decode_truth=False),
)
