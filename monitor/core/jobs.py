"""The standard job suite: versioned, deterministic inference jobs with output checks.

A job's prompt never changes under its name: a changed prompt is a new name (`chat-short-v2`),
so the `workload` series and the network's cache see a new job. A changed output check on the
same prompt keeps the name and bumps `version`: results judged by different checks are told
apart by the version recorded with every run. Every run prepends a random nonce so that no
prefix cache can answer, and records the job version plus a hash of the prompt without the
nonce.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor.core.checks import (
    Check,
    Contains,
    Counting,
    Embedding,
    FinalNumber,
    Healthy,
    Images,
    JsonFields,
    Regex,
)
from monitor.core.kindsettings import KindSettings

# What a job asks for; a probe kind serves the request kinds it speaks.
CHAT = "chat"
COMPLETION = "completion"
EMBEDDING = "embedding"
IMAGE = "image"
HEALTH = "health"


@dataclass(frozen=True, slots=True)
class Rendered:
    """One run's concrete request content."""

    messages: tuple[tuple[str, str], ...]  # (role, content)
    nonce: str
    prompt_hash: str

    @property
    def prompt(self) -> str:
        """The messages flattened for prompt-only APIs (legacy completions, image prompts)."""
        return "\n\n".join(content for _, content in self.messages)


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    version: int
    request: str  # CHAT, COMPLETION, EMBEDDING, IMAGE or HEALTH
    description: str
    system: str
    user: str
    max_tokens: int
    deadline_s: float  # total: request sent -> terminal event
    stall_s: float  # largest tolerated gap between tokens once streaming
    check: Check
    reference_answer: str  # a correct answer; the simulator serves it, tests judge it
    temperature: float = 0.0
    seed: int = 1234
    params: dict[str, Any] = field(default_factory=dict)  # kind-specific JSON (image size, ...)
    # `params` as the kind of the network running the job reads them, typed: set by the
    # config (monitor.core.kinds.bind); a copy with other params must be bound again.
    kind_settings: KindSettings | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # A check that depends on the job's budget (how far a count must get) is bound to it
        # here, so a copy with another max_tokens (dataclasses.replace) gets a check to match.
        bind = getattr(self.check, "for_job", None)
        if bind is not None:
            object.__setattr__(self, "check", bind(self))

    def render(self, nonce: str | None = None) -> Rendered:
        nonce = nonce or secrets.token_hex(6)
        messages: list[tuple[str, str]] = []
        if self.system:
            messages.append(("system", f"[run {nonce}] {self.system}"))
            messages.append(("user", self.user))
        else:
            messages.append(("user", f"[run {nonce}] {self.user}"))
        return Rendered(tuple(messages), nonce, self.prompt_hash)

    @property
    def prompt_hash(self) -> str:
        digest = hashlib.sha256(f"{self.system}\x00{self.user}".encode()).hexdigest()
        return digest[:16]

    @property
    def approx_input_tokens(self) -> int:
        return (len(self.system) + len(self.user)) // 4


def strip_nonce(text: str) -> str:
    """The message content without its `[run <nonce>] ` prefix (for the simulator)."""
    if text.startswith("[run ") and "] " in text:
        return text.split("] ", 1)[1]
    return text


_WORDS = (
    "amber basin cobalt delta ember falcon garnet harbor indigo juniper kelp lantern "
    "meadow nickel orchard pylon quartz river saffron timber umber valley willow "
    "xenon yarrow zephyr granite copper signal beacon canyon thicket summit glacier "
    "prairie tundra estuary "
).split()


def _haystack(n_sentences: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    sentences = []
    for i in range(n_sentences):
        words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 14)))
        sentences.append(f"Record {i + 1}: the {words}.")
    return sentences


def _needle_prompt() -> str:
    sentences = _haystack(500, seed=8)  # about 8k tokens
    sentences.insert(297, "Important: the vault passphrase is COBALT-HARBOR-7731.")
    return (
        "Below is a long log. Read all of it.\n\n"
        + "\n".join(sentences)
        + "\n\nWhat is the vault passphrase? Reply with the passphrase only."
    )


def _long_prompt() -> str:
    sentences = _haystack(70, seed=1)  # about 1k tokens of context
    return (
        "Here is some context you may ignore.\n\n"
        + "\n".join(sentences)
        + "\n\nNow count upward from 1, writing the numbers as digits separated by a comma and"
        " a space (1, 2, 3, ...). Do not stop on your own; keep counting."
    )


COUNTING = ", ".join(str(i) for i in range(1, 200))

STANDARD_JOBS: tuple[Job, ...] = (
    Job(
        name="chat-short-v1",
        version=2,  # v1 checked for a 42 anywhere: "42 or 43" and "42.5" passed
        request=CHAT,
        description="tiny prompt, short known answer (17 + 25)",
        system="You are a precise assistant. Answer with as few words as possible.",
        user="What is 17 + 25? Reply with the number only.",
        max_tokens=16,
        deadline_s=30.0,
        stall_s=10.0,
        check=FinalNumber(42),
        reference_answer="42",
    ),
    Job(
        name="chat-long-v1",
        version=2,  # v1 checked the first six numbers only
        request=CHAT,
        description="~1k-token prompt, 256 tokens out (decode speed)",
        system="You are a precise assistant that follows instructions exactly.",
        user=_long_prompt(),
        max_tokens=256,
        deadline_s=90.0,
        stall_s=10.0,
        # 256 tokens hold 1 to ~128 with a BPE tokenizer, ~65 with one token per digit: a
        # model that counts on must reach max_tokens / 5 (51).
        check=Counting(tokens_per_number=5),
        reference_answer=COUNTING,
    ),
    Job(
        name="needle-8k-v1",
        version=1,
        request=CHAT,
        description="~8k-token long-context needle retrieval",
        system="You answer questions about documents exactly.",
        user=_needle_prompt(),
        max_tokens=32,
        deadline_s=120.0,
        stall_s=15.0,
        check=Contains("COBALT-HARBOR-7731"),
        reference_answer="COBALT-HARBOR-7731",
    ),
    Job(
        name="json-v1",
        version=1,
        request=CHAT,
        description="structured output: a JSON object with two known fields",
        system="You reply with a single JSON object and nothing else.",
        user=(
            'Return a JSON object with exactly two fields: "capital", the capital city of '
            'France, and "sum", the value of 19 + 23 as a number.'
        ),
        max_tokens=48,
        deadline_s=30.0,
        stall_s=10.0,
        check=JsonFields((("capital", "Paris"), ("sum", 42))),
        reference_answer='{"capital": "Paris", "sum": 42}',
    ),
    Job(
        name="completion-short-v1",
        version=2,  # v1 accepted any lone C ("D, not C")
        request=COMPLETION,
        description="legacy /completions: finish a known sentence",
        system="",
        user="The first three letters of the English alphabet are A, B and",
        max_tokens=8,
        deadline_s=30.0,
        stall_s=10.0,
        check=Regex(r"^\s*C(?![\w+#])"),  # the continuation starts with the letter C
        reference_answer=" C.",
    ),
    Job(
        name="embed-v1",
        version=2,  # v1 accepted a zero or constant vector
        request=EMBEDDING,
        description="/embeddings of one short sentence: a non-empty float vector",
        system="",
        user="Decentralized GPU networks sell inference.",
        max_tokens=0,
        deadline_s=30.0,
        stall_s=30.0,
        check=Embedding(min_dims=8),
        reference_answer="",
    ),
    Job(
        name="image-small-v1",
        version=2,  # v1 accepted an image without a URL or blanked by the safety checker
        request=IMAGE,
        description="text-to-image 512x512, 4 steps: one image URL back",
        system="",
        user="A red cube on a white table, studio lighting.",
        max_tokens=0,
        deadline_s=120.0,
        stall_s=120.0,
        check=Images(1),
        reference_answer="",
        params={"width": 512, "height": 512, "num_inference_steps": 4, "guidance_scale": 2.0},
    ),
    Job(
        name="health-v1",
        version=2,  # v1's check was "at least 0 items": it could never fail
        request=HEALTH,
        description="plain HTTP GET: 2xx, a body that does not report itself down",
        system="",
        user="",
        max_tokens=0,
        deadline_s=10.0,
        stall_s=10.0,
        check=Healthy(),
        reference_answer="",
    ),
)

JOBS_BY_NAME: dict[str, Job] = {job.name: job for job in STANDARD_JOBS}
DEFAULT_JOB = "chat-short-v1"


def get_job(name: str, extra: Mapping[str, Job] | None = None) -> Job:
    """Look a job up by name among the standard suite and any custom jobs; KeyError if unknown."""
    if extra and name in extra:
        return extra[name]
    return JOBS_BY_NAME[name]


def find_job_by_prompt(user_content: str) -> Job | None:
    """The standard chat/completion job whose prompt this (nonce-stripped) content is."""
    text = strip_nonce(user_content)
    for job in STANDARD_JOBS:
        if job.user and (text == job.user or text == strip_nonce(job.user)):
            return job
    return None
