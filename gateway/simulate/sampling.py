"""Weighted choice with the cumulative weights computed once (``random.choices`` recomputes them
on every call, which dominated the cost of creating a person)."""

from __future__ import annotations

from bisect import bisect
from collections.abc import Sequence
from itertools import accumulate
from random import Random
from typing import Generic, TypeVar

T = TypeVar("T")


class Weighted(Generic[T]):
    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        if len(items) != len(weights) or not items:
            raise ValueError("need as many weights as items, and at least one")
        self.items = tuple(items)
        self.cumulative = list(accumulate(weights))
        self.total = self.cumulative[-1]

    def draw(self, rng: Random) -> T:
        return self.items[bisect(self.cumulative, rng.random() * self.total)]


def below(rng: Random, n: int) -> int:
    """A uniform integer in [0, n) (cheaper than ``randrange`` and just as deterministic)."""
    return int(rng.random() * n)
