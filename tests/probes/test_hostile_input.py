"""No answer a network can send crashes a probe: hypothesis feeds arbitrary bytes and arbitrary
JSON (any value in any field of each protocol) to every kind's reader, and each input ends in
exactly one outcome. Readers are driven directly (fast); a few inputs go through real loopback
servers end to end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.core.result import Outcome, ProbeResult
from monitor.core.target import Target
from probes import PROBES, base, embeddings, http, jobapi, livepeer, ollama, openai
from probes.oneshot import Reply
from probes.session import RequestClock, SessionPool
from probes.streaming import Decoder
from tests.conftest import quick_job

# Field names of every protocol the probes read, so generated objects reach deep paths.
KEYS = ("choices", "delta", "content", "text", "finish_reason", "usage", "completion_tokens",
        "prompt_tokens", "error", "message", "model", "system_fingerprint", "reasoning_content",
        "reasoning", "tool_calls", "index", "role", "done", "chunk", "tokens_used",
        "done_reason", "eval_count", "prompt_eval_count", "eval_duration", "total_duration",
        "thinking", "data", "embedding", "images", "url", "nsfw", "seed", "detail", "msg",
        "state", "status", "job", "id", "jobResult", "opStates", "logs", "log", "type",
        "exitCode", "node", "timeStart", "timeEnd", "endpoint")

scalars = (st.none() | st.booleans() | st.integers() | st.sampled_from([2**53 + 1, -1, 10**400])
           | st.floats() | st.text(max_size=12) | st.sampled_from(["", "[DONE]", "stop"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), inner, max_size=5),
    max_leaves=16,
)
documents = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)

# A valid message of each streaming protocol: mutated below, one field at a time.
TEMPLATES: dict[str, list[dict[str, Any]]] = {
    "chat": [
        {"id": "c", "model": "m", "system_fingerprint": "fp", "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "4",
                                   "reasoning_content": None, "tool_calls": None},
             "finish_reason": None}], "usage": None},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 9, "completion_tokens": 1}},
    ],
    "completion": [
        {"choices": [{"index": 0, "text": " C", "finish_reason": "stop"}],
         "usage": {"prompt_tokens": 9, "completion_tokens": 1}},
    ],
    "ollama": [
        {"model": "m", "message": {"role": "assistant", "content": "4", "thinking": None},
         "done": False},
        {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True,
         "done_reason": "stop", "eval_count": 2, "eval_duration": 10**7,
         "prompt_eval_count": 9, "total_duration": 10**8},
    ],
    "livepeer": [
        {"choices": [{"delta": {"role": "assistant", "content": "4"}, "index": 0,
                      "finish_reason": None}], "model": "m",
         "tokens_used": {"prompt_tokens": 9, "completion_tokens": 1}},
        {"chunk": "2"},
        {"tokens_used": 3, "done": True},
    ],
}


def decoder_for(protocol: str) -> Decoder:
    if protocol == "chat":
        return openai.ChatDecoder(completion=False)
    if protocol == "completion":
        return openai.ChatDecoder(completion=True)
    if protocol == "ollama":
        return ollama.NDJSONDecoder()
    return livepeer.LLMDecoder()


def frame(protocol: str, document: object) -> bytes:
    text = json.dumps(document)
    return (text + "\n").encode() if protocol == "ollama" else f"data: {text}\n\n".encode()


def run_decoder(protocol: str, blob: bytes, cuts: list[int] = ()) -> tuple[Any, Decoder]:
    """Feed `blob` in pieces cut at `cuts`, then EOF; the verdict and the decoder."""
    decoder = decoder_for(protocol)
    last = 0
    for cut in [*sorted(set(cuts)), len(blob)]:
        piece = blob[last:cut]
        last = cut
        if not piece:
            continue
        decoder.stats.nbytes += len(piece)
        verdict = decoder.feed(piece, 1.0)
        if verdict is not None:
            return verdict, decoder
    return decoder.end(), decoder


def assert_one_outcome(verdict: Any, decoder: Decoder) -> None:
    outcome, error = verdict
    assert outcome is None or isinstance(outcome, Outcome)
    assert isinstance(error, str) and (outcome is None) == (error == "")
    # Whatever was accepted as generated text is text, and the counts are counts.
    assert all(isinstance(piece, str) for piece in decoder.stats.text)
    assert isinstance(decoder.stats.output, str)
    for name in ("usage_out", "usage_in"):
        value = getattr(decoder, name, None)
        assert value is None or (isinstance(value, int) and not isinstance(value, bool))


PROTOCOLS = sorted(TEMPLATES)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=150, deadline=None)
@given(blob=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_arbitrary_bytes(protocol: str, blob: bytes, cuts: list[int]) -> None:
    assert_one_outcome(*run_decoder(protocol, blob, cuts))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=150, deadline=None)
@given(docs=st.lists(json_values | documents, min_size=1, max_size=4), data=st.data())
def test_arbitrary_json_documents_give_one_outcome_whatever_the_split(
        protocol: str, docs: list[object], data: st.DataObject) -> None:
    blob = b"".join(frame(protocol, doc) for doc in docs)
    whole = run_decoder(protocol, blob)
    assert_one_outcome(*whole)
    cuts = data.draw(st.lists(st.integers(0, len(blob)), max_size=8))
    assert run_decoder(protocol, blob, cuts)[0] == whole[0]  # TCP segmentation changes nothing


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every node of a JSON value, as the keys leading to it (the root is ())."""
    found = [prefix]
    items = value.items() if isinstance(value, dict) else (
        enumerate(value) if isinstance(value, list) else ())
    for key, child in items:
        found += paths(child, (*prefix, key))
    return found


def replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)
    return copy


def mutate(message: dict[str, Any], data: st.DataObject) -> Any:
    """`message` with one node, drawn evenly from all of them, replaced by any JSON value."""
    path = data.draw(st.sampled_from(paths(message)))
    return replaced(message, path, data.draw(json_values))


@pytest.mark.parametrize("protocol", PROTOCOLS)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_value_in_any_field_of_a_valid_stream(protocol: str, data: st.DataObject) -> None:
    messages = list(TEMPLATES[protocol])
    for _ in range(data.draw(st.integers(1, 2))):
        i = data.draw(st.integers(0, len(messages) - 1))
        messages[i] = mutate(messages[i], data)
    blob = b"".join(frame(protocol, m) for m in messages)
    if protocol in ("chat", "completion"):
        blob += b"data: [DONE]\n\n"
    assert_one_outcome(*run_decoder(protocol, blob))


NOT_TEXT = st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.text(), max_size=2),
                     st.dictionaries(st.text(max_size=3), st.text(), max_size=2))


@settings(max_examples=60, deadline=None)
@given(value=NOT_TEXT)
def test_generated_text_that_is_not_a_string_is_malformed_never_ok(value: object) -> None:
    streams = {
        "chat": [{"choices": [{"index": 0, "delta": {"content": value}}]},
                 {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}],
        "completion": [{"choices": [{"index": 0, "text": value, "finish_reason": "stop"}]}],
        "ollama": [{"message": {"role": "assistant", "content": value}, "done": False},
                   {"done": True}],
        "livepeer": [{"chunk": value}, {"done": True}],
    }
    for protocol, messages in streams.items():
        blob = b"".join(frame(protocol, m) for m in messages)
        outcome, error = run_decoder(protocol, blob)[0]
        assert outcome is Outcome.MALFORMED, (protocol, value, error)
        assert "not a string" in error
    blob = frame("livepeer", {"choices": [{"delta": {"content": value}, "index": 0}]})
    assert run_decoder("livepeer", blob)[0][0] is Outcome.MALFORMED


@pytest.mark.parametrize(("protocol", "message", "reason"), [
    ("chat", {"choices": [{"index": 0, "delta": "hi"}]}, "choices[0].delta is a string"),
    ("chat", {"choices": {"index": 0}}, "choices is an object, not a list"),
    ("chat", {"choices": ["hi"]}, "choices[0] is a string, not an object"),
    ("chat", {"choices": [], "usage": {"completion_tokens": "12"}},
     "usage.completion_tokens is a string"),
    ("chat", {"choices": [{"delta": {"tool_calls": "x"}}]}, "delta.tool_calls is a string"),
    ("ollama", {"message": "hi", "done": False}, "message is a string, not an object"),
    ("ollama", {"message": {"content": "4"}, "done": "no"}, "done is a string, not a boolean"),
    ("ollama", {"done": True, "eval_count": -1}, "eval_count is a number, not a count"),
    ("livepeer", {"choices": [{"delta": "hi"}]}, "choices[0].delta is a string"),
    ("livepeer", {"tokens_used": {"completion_tokens": True}},
     "tokens_used.completion_tokens is a boolean"),
])
def test_protocol_violations_name_the_field(protocol: str, message: dict, reason: str) -> None:
    outcome, error = run_decoder(protocol, frame(protocol, message))[0]
    assert outcome is Outcome.MALFORMED
    assert reason in error


def test_null_counts_as_absent() -> None:
    chunks = [{"choices": [{"index": 0, "delta": {"content": "42", "reasoning_content": None,
                                                  "tool_calls": None}, "finish_reason": None}],
               "usage": None, "model": None},
              {"choices": [{"index": 0, "delta": {"content": None}, "finish_reason": "stop"}],
               "usage": {"completion_tokens": None}}]
    blob = b"".join(frame("chat", c) for c in chunks) + b"data: [DONE]\n\n"
    verdict, decoder = run_decoder("chat", blob)
    assert verdict == (None, "") and decoder.stats.output == "42"


def test_json_nested_too_deep_is_malformed_not_a_crash() -> None:
    deep = b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n"
    assert run_decoder("chat", deep)[0][0] is Outcome.MALFORMED
    assert run_decoder("ollama", b"[" * 100_000 + b"\n")[0][0] is Outcome.MALFORMED
    assert isinstance(base.error_message(b"[" * 100_000), str)


# -- one-shot kinds: the whole answer judged at once ----------------------------------------

def reply(body: bytes, status: int = 200) -> Reply:
    return Reply(0.0, RequestClock(), status, {}, body, False, None, 0.0, None, "")


def bodies() -> st.SearchStrategy[bytes]:
    as_json = (json_values | documents).map(lambda v: json.dumps(v).encode())
    return as_json | st.binary(max_size=200)


@settings(max_examples=300, deadline=None)
@given(body=bodies(), status=st.sampled_from([200, 200, 201, 204, 301, 404, 429, 500]))
def test_one_shot_answers(body: bytes, status: int) -> None:
    outcome, error, vector, tokens = embeddings._judge(reply(body, status))
    assert isinstance(outcome, Outcome) and isinstance(error, str)
    assert tokens is None or type(tokens) is int
    quick_job("embed-v1").check(vector if vector is not None else [])
    outcome, error, images, _details = livepeer._judge_image(reply(body, status))
    assert isinstance(outcome, Outcome) and isinstance(error, str)
    quick_job("image-small-v1").check(images if images is not None else [])
    outcome, error, text = http.judge(status, body, quick_job("health-v1"))
    assert isinstance(outcome, Outcome) and (text is None or isinstance(text, str))
    quick_job("health-v1").check(text or "")
    assert isinstance(base.error_message(body), str)


@settings(max_examples=300, deadline=None)
@given(doc=documents, result=json_values)
def test_job_documents(doc: dict, result: object) -> None:
    run = jobapi._Run()
    try:
        jobapi._observe(doc, run)
    except jobapi._Failed as failed:
        assert failed.outcome is Outcome.MALFORMED
    document = {**doc, "jobResult": result if result is not None else {}}
    try:
        asyncio.run(jobapi._collect(None, None, None, run, document))  # type: ignore[arg-type]
    except jobapi._Failed as failed:
        assert failed.outcome in (Outcome.MALFORMED, Outcome.JOB_FAILED)
    else:
        assert isinstance(run.output, str)


@settings(max_examples=200, deadline=None)
@given(value=st.text(max_size=40))
def test_retry_after_of_any_header(value: str) -> None:
    seconds = base.retry_after({"retry-after": value})
    assert seconds is None or seconds >= 0


# -- end to end through real loopback servers -------------------------------------------------

KINDS = [("openai", "chat-short-v1"), ("openai", "completion-short-v1"),
         ("openai", "embed-v1"), ("ollama", "chat-short-v1"), ("livepeer", "chat-short-v1"),
         ("livepeer", "image-small-v1"), ("http", "health-v1"), ("jobapi", "chat-short-v1"),
         ("theta", "chat-short-v1")]
STREAMS = {"/v1/chat/completions": "chat", "/v1/completions": "completion",
           "/api/chat": "ollama", "/llm": "livepeer"}
CONTENT_TYPES = {"chat": "text/event-stream", "completion": "text/event-stream",
                 "livepeer": "text/event-stream", "ollama": "application/x-ndjson"}


@pytest.fixture
async def replay_server():
    """A loopback server answering each path from `answer`: the streaming paths with its
    `messages` framed in their protocol (or its raw `body`), every other path with `body`."""
    answer: dict[str, Any] = {}

    async def handler(request: web.Request) -> web.Response:
        protocol = STREAMS.get(request.path)
        if protocol is None or answer["raw"]:
            body, ctype = answer["body"], answer["type"]
        else:
            body = b"".join(frame(protocol, m) for m in answer["messages"])
            body += b"data: [DONE]\n\n" if answer["done"] and protocol != "ollama" else b""
            ctype = CONTENT_TYPES[protocol]
        return web.Response(body=body, status=answer["status"], headers={"Content-Type": ctype})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", answer
    await runner.cleanup()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(messages=st.lists(json_values | documents, min_size=1, max_size=3), body=bodies(),
       raw=st.booleans(), done=st.booleans(),
       ctype=st.sampled_from(["text/event-stream", "application/json", "application/x-ndjson",
                              "text/html", "application/octet-stream"]),
       status=st.sampled_from([200, 200, 200, 502]))
async def test_every_kind_end_to_end(replay_server, messages: list[object], body: bytes,
                                     raw: bool, done: bool, ctype: str, status: int) -> None:
    url, answer = replay_server
    answer.update(messages=messages, body=body, raw=raw, done=done, type=ctype, status=status)
    pool = SessionPool()
    try:
        for kind, job_name in KINDS:
            base_url = url + ("/v1" if kind == "openai" else "/api?poll=0.01")
            if kind in ("ollama", "livepeer", "theta"):
                base_url = url + ("?poll=0.01" if kind == "theta" else "")
            target = Target(network="hostile", name="small", kind=kind, base_url=base_url,
                            model="m")
            job = quick_job(job_name, deadline_s=0.3, stall_s=0.3)
            result = await PROBES[kind].run(target, job, pool.for_target(target))
            assert isinstance(result, ProbeResult) and isinstance(result.outcome, Outcome)
            if status == 502:
                assert result.outcome is Outcome.HTTP_ERROR
    finally:
        await pool.close()
