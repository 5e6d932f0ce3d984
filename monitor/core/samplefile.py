"""A stored reference sample set: the JSON file `depin-monitor equality --save` writes.

The completions of one model for a prompt set, with the settings they were sampled at, so that
a network can be compared with a model nobody serves beside it (weights you ran yourself, or
a provider sampled once and trusted).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from monitor.core.equality import Sample
from monitor.core.jsonfile import read_tagged, write_tagged

SAMPLES_FORMAT = "depin-monitor-equality-samples/1"


@dataclass(frozen=True)
class SampleSet:
    """A stored reference: completions of `model` sampled at these settings."""

    model: str
    prompt_set: str
    prompt_set_digest: str
    temperature: float
    max_tokens: int
    created_at: float
    samples: tuple[Sample, ...]


def save_samples(path: str | Path, samples: SampleSet) -> None:
    body = {"format": SAMPLES_FORMAT, "model": samples.model, "prompt_set": samples.prompt_set,
            "prompt_set_digest": samples.prompt_set_digest,
            "temperature": samples.temperature, "max_tokens": samples.max_tokens,
            "created_at": samples.created_at,
            "samples": [[s.prompt, s.text] for s in samples.samples]}
    write_tagged(path, body)


def load_samples(path: str | Path) -> SampleSet:
    """ValueError with a one-line reason for a file that is not a sample set."""
    body = read_tagged(path, SAMPLES_FORMAT, "sample set", "depin-monitor equality --save")
    try:
        samples = tuple(Sample(int(p), str(t)) for p, t in body["samples"])
        return SampleSet(model=str(body["model"]), prompt_set=str(body["prompt_set"]),
                         prompt_set_digest=str(body["prompt_set_digest"]),
                         temperature=float(body["temperature"]),
                         max_tokens=int(body["max_tokens"]),
                         created_at=float(body["created_at"]), samples=samples)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"a sample set with a missing or malformed field ({exc})") from None
