"""A model's size tier from its id: the catalog's ladder (small ~8B, medium ~30-70B, large
>= 100B), so that models a network newly lists can be reported where a buyer would put them.

Sizes are read from the id (`Llama-3.3-70B-Instruct`, `llama3.1:8b`, `Mixtral-8x7B`,
`Qwen3-235B-A22B` counts its 235B total, not the 22B active) or from a listing's own figure
(Ollama's `parameter_size`); an id that names no size (`DeepSeek-V3.2`) is `unsized` rather
than guessed.
"""

from __future__ import annotations

import re

SMALL, MEDIUM, LARGE, UNSIZED = "small", "medium", "large", "unsized"
TIERS = (SMALL, MEDIUM, LARGE, UNSIZED)
SMALL_MAX_B = 20.0  # up to ~20B is small (8B, 12B Mistral-Nemo, 14B)
LARGE_MIN_B = 100.0  # 100B and more is large (405B, 235B MoE, 671B)

# A size in billions: "70B", "8b", "1.5B", "8x7B"; not the "A22B" active-parameter suffix of
# MoE ids, nor digits that are part of a word or version ("v3", "2407").
_SIZE = re.compile(r"(?<![A-Za-z\d.])(?:(\d+)x)?(\d+(?:\.\d+)?)[bB](?![A-Za-z\d])")
_PARAMETER_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMBT])\s*", re.IGNORECASE)
_SCALE = {"K": 1e-6, "M": 1e-3, "B": 1.0, "T": 1e3}


def parameters_b(model_id: str) -> float | None:
    """Billions of parameters named in a model id, or None."""
    match = _SIZE.search(model_id)
    if match is None:
        return None
    experts, size = match.groups()
    return float(size) * (int(experts) if experts else 1)


def parameter_size_b(text: str) -> float | None:
    """Ollama's `details.parameter_size` ("8.0B", "137M") in billions, or None."""
    match = _PARAMETER_SIZE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        return None
    return float(match.group(1)) * _SCALE[match.group(2).upper()]


def tier_of(billions: float | None) -> str:
    if billions is None:
        return UNSIZED
    if billions <= SMALL_MAX_B:
        return SMALL
    return MEDIUM if billions < LARGE_MIN_B else LARGE
