"""Draw, refuse, draw again: the one rejection loop behind every "give me N that pass this check" request.

A filter on generated sequences (liabilities in a redesigned loop, chains that are not one coherent
antibody chain) must neither change the sequences an unfiltered run gives nor loop forever. So the
first round is exactly the unfiltered draw with the request's seed, later rounds draw from seeds derived
from it (``SeedSequence([seed, round])``) as many as the pass rate so far says are needed, and the loop
stops after ``limit`` draws with fewer than asked, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

T = TypeVar("T")
MIN_RATE = 0.125
"""Pass rate assumed at worst when sizing a round (so a round is at most 8× what is missing)."""


@dataclass
class Resampled(Generic[T]):
    """What a rejection loop kept, how many it drew, why it refused which, and how many passing draws it did not
    need (a round sized by the pass rate may overshoot): drawn = kept + refused + surplus."""

    kept: list[T]
    drawn: int
    refused: list[tuple[T, object]] = field(default_factory=list)
    surplus: int = 0


def round_seed(seed: int, round_: int) -> int:
    """The request's own seed for round 0, a derived one for every later round."""
    return seed if round_ == 0 else int(np.random.SeedSequence([seed, round_]).generate_state(1)[0])


def resample_until(
    num: int,
    draw: Callable[[int, int], list[T]],
    refuse: Callable[[T], object | None],
    seed: int,
    limit: int,
) -> Resampled[T]:
    """Up to ``num`` draws that ``refuse`` returns None for, in draw order, from at most ``limit`` draws.

    ``draw(size, seed)`` makes ``size`` candidates; ``refuse(candidate)`` gives the reason to refuse it, or
    None to keep it. Passing candidates beyond ``num`` are counted as ``surplus``, not refused.
    """
    result: Resampled[T] = Resampled([], 0)
    round_ = 0
    while len(result.kept) < num and result.drawn < limit:
        missing = num - len(result.kept)
        rate = max(len(result.kept) / result.drawn, MIN_RATE) if result.drawn else 1.0
        size = min(limit - result.drawn, max(missing, int(np.ceil(missing / rate))))
        for candidate in draw(size, round_seed(seed, round_)):
            result.drawn += 1
            reason = refuse(candidate)
            if reason is not None:
                result.refused.append((candidate, reason))
            elif len(result.kept) < num:
                result.kept.append(candidate)
            else:
                result.surplus += 1
        round_ += 1
    return result
