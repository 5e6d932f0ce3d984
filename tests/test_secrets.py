"""The scrubber (monitor.core.secrets): for any key a provider issues, any text around it, any
position, any cut and any form a server echoes it in, no stretch of 8 or more characters of the
key survives."""

from __future__ import annotations

import json
import logging
import string
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.core.logs import scrub_logs
from monitor.core.secrets import MIN_FRAGMENT, cut, scrub, scrub_value

_B64URL = string.ascii_letters + string.digits + "-_"
_B64 = string.ascii_letters + string.digits + "+/"
_HEX = "0123456789abcdef"


def _body(alphabet: str, min_size: int = 8) -> st.SearchStrategy[str]:
    return st.text(alphabet=alphabet, min_size=min_size, max_size=64)


# The shapes providers issue keys in: OpenAI-style sk-..., Together's tgn_..., hex, base64url,
# standard base64 (with + / and = padding), and JWTs (three base64url parts joined by dots).
KEYS = st.one_of(
    _body(_B64URL).map(lambda s: "sk-" + s),
    _body(_B64URL).map(lambda s: "sk-proj-" + s),
    _body(_B64URL).map(lambda s: "tgn_" + s),
    _body(_HEX),
    _body(_B64URL),
    st.tuples(_body(_B64), st.sampled_from(["", "=", "=="])).map("".join),
    st.tuples(_body(_B64URL, 4), _body(_B64URL, 4), _body(_B64URL, 4)).map(".".join),
)

ENCODINGS = {
    "raw": lambda k: k,
    "json": lambda k: json.dumps(k)[1:-1],
    "json, slash escaped": lambda k: json.dumps(k)[1:-1].replace("/", "\\/"),
    "percent": lambda k: quote(k, safe=""),
    "percent, lower-case hex": lambda k: quote(k, safe="").replace("%2B", "%2b")
    .replace("%2F", "%2f").replace("%3D", "%3d"),
    "form (+ for space)": quote_plus,
    "quoted header": lambda k: f'"x-api-key: {k}"',
    "bearer": lambda k: f"Authorization: Bearer {k}",
    "json in a header": lambda k: json.dumps({"authorization": f"Bearer {k}"}),
}

# Text a network writes around the key: any printable text, including the key's own alphabet.
AROUND = st.text(alphabet=string.printable + "é…", max_size=300)


def fragments(key: str, *texts: str) -> list[str]:
    """Every stretch of MIN_FRAGMENT characters of `key` (in any of the `forms`) found in one
    of `texts`."""
    forms = {f(key) for f in (ENCODINGS["raw"], ENCODINGS["json"],
                              ENCODINGS["json, slash escaped"], ENCODINGS["percent"],
                              ENCODINGS["form (+ for space)"])}
    forms |= {ENCODINGS["percent, lower-case hex"](key)}
    return [form[i:i + MIN_FRAGMENT] for form in forms
            for i in range(len(form) - MIN_FRAGMENT + 1)
            if any(form[i:i + MIN_FRAGMENT] in text for text in texts)]


@given(key=KEYS, before=AROUND, after=AROUND, encoding=st.sampled_from(sorted(ENCODINGS)),
       limit=st.integers(min_value=0, max_value=400), precut=st.integers(min_value=0,
                                                                           max_value=400))
def test_no_fragment_of_the_key_survives_a_scrub_or_a_cut(key: str, before: str, after: str,
                                                          encoding: str, limit: int,
                                                          precut: int) -> None:
    text = before + ENCODINGS[encoding](key) + after
    shown = [scrub(text, [key]), cut(text, limit, [key]), cut(text, limit, [key], one_line=True),
             # someone (the network, a probe) cut the text before the scrubber saw it
             scrub(text[:precut], [key]), scrub(text[precut:], [key]),
             cut(text[:precut], limit, [key])]
    assert fragments(key, *shown) == []
    assert len(shown[1]) <= limit


@given(key=KEYS, before=AROUND, after=AROUND, encoding=st.sampled_from(sorted(ENCODINGS)),
       data=st.data())
def test_any_piece_of_8_or_more_characters_of_the_key_is_removed(
        key: str, before: str, after: str, encoding: str, data: st.DataObject) -> None:
    """What is left of a key after someone else's cut, whatever its start and length."""
    form = ENCODINGS[encoding](key)
    start = data.draw(st.integers(min_value=0, max_value=len(form) - MIN_FRAGMENT))
    end = data.draw(st.integers(min_value=start + MIN_FRAGMENT, max_value=len(form)))
    assert fragments(key, scrub(before + form[start:end] + after, [key])) == []


@given(key=KEYS, before=AROUND, after=AROUND, split=st.integers(min_value=1, max_value=60))
def test_a_key_split_across_stream_chunks_is_removed_from_the_joined_text(
        key: str, before: str, after: str, split: int) -> None:
    at = min(split, len(key) - 1)
    chunks = [before + key[:at], key[at:] + after]
    assert fragments(key, scrub("".join(chunks), [key])) == []


@given(key=KEYS, other=KEYS, text=AROUND)
def test_scrubbing_is_idempotent_and_keeps_text_without_a_key(key: str, other: str,
                                                              text: str) -> None:
    once = scrub(text + key + text + other, [key, other])
    assert scrub(once, [key, other]) == once
    if not fragments(key, text) and "Bearer" not in text and "://" not in text \
            and "bearer" not in text.lower():
        assert scrub(text, [key]) == text


def test_what_a_reader_sees() -> None:
    key = "sk-0123456789abcdef0123456789abcdef0123456789ab"
    assert scrub(f"The key you sent is {key}.", [key]) == "The key you sent is ***."
    # what is left where an earlier cut fell inside the key
    assert scrub(f"no number in 'The key you sent is {key[:30]}…'", [key]) == \
        "no number in 'The key you sent is ***…'"
    assert cut("x" * 180 + key, 200, [key]) == "x" * 180 + "***"
    assert cut("x" * 190 + key, 200, [key]) == "x" * 190 + "***"
    assert scrub("Authorization: Bearer abc.def-ghi", []) == "Authorization: Bearer ***"
    assert scrub("GET https://user:pw@host/x", []) == "GET https://***@host/x"
    # a short secret (a key's password) is removed where it stands whole
    assert scrub("password hunter2 rejected", [None, "hunter2"]) == "password *** rejected"


def test_structures_are_scrubbed_keys_and_values() -> None:
    key = "tgn_ABCDEFGHIJKLMNOPQRSTUVWX"
    value = {"node": key, key: [1, ("a", f"x{key}y")], "n": 3, "none": None}
    assert scrub_value(value, [key]) == {"node": "***", "***": [1, ("a", "x***y")], "n": 3,
                                         "none": None}


def test_every_log_line_is_scrubbed_whatever_logger_and_level(
        caplog: pytest.LogCaptureFixture) -> None:
    key = "tgn_5mXq7vR2mP9tL4wZ8nB3cF6hJ1kD5sG0aE"
    caplog.set_level(logging.DEBUG)
    scrub_logs([key, None])
    logging.getLogger("aiohttp.client").debug("answer: %s", "The key you sent is " + key[:30])
    try:
        raise ValueError(f"bad key {key}")
    except ValueError:
        logging.getLogger("monitor.run").exception("probe raised")
    assert "The key you sent is ***" in caplog.text and "ValueError: bad key ***" in caplog.text
    assert fragments(key, caplog.text) == []
