"""Seeded variants: each drill breaks one of several things (which version, component, parameter or data column),
drawn from a seed so that `workbench drill start NAME --seed N` breaks exactly the same thing again.

A variant is a frozen pydantic model; each drill declares its own subclass and at least :data:`MIN_VARIANTS`.
Drawing is a pure function of the drill's name and the seed.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field

MIN_VARIANTS = 3
SEED_RANGE = 1_000_000


class Variant(BaseModel):
    """What one variant of a drill breaks; ``key`` names it in reports (hidden from briefs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str = Field(pattern=r"^[a-z0-9-]+$")


V = TypeVar("V", bound=Variant)


def new_seed() -> int:
    """A fresh seed for a drill started without one."""
    return secrets.randbelow(SEED_RANGE)


def draw(variants: Sequence[V], drill: str, seed: int) -> V:
    """The variant of ``drill`` that ``seed`` picks (the same on every machine and every run)."""
    return variants[random.Random(f"{drill}:{seed}").randrange(len(variants))]


def seed_for(variants: Sequence[V], drill: str, key: str, tries: int = 10_000) -> int:
    """The smallest seed that draws the variant ``key`` of ``drill`` (for validation and tests)."""
    for seed in range(tries):
        if draw(variants, drill, seed).key == key:
            return seed
    raise ValueError(f"no seed below {tries} draws variant {key!r} of {drill!r}")


def seeds(variants: Sequence[V], drill: str) -> dict[str, int]:
    """One seed per variant of ``drill``, by variant key, in the order the variants are declared."""
    return {v.key: seed_for(variants, drill, v.key) for v in variants}
