"""The reconnect back-off: growth, cap, jitter, reset."""

from __future__ import annotations

import random
import time

import pytest

from mailbot.backoff import Backoff


def test_without_jitter_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(base=1, cap=30, jitter=0)
    assert [backoff.next_delay() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff.attempts == 8


def test_jitter_only_shortens_and_stays_within_bounds() -> None:
    backoff = Backoff(base=2, cap=60, jitter=0.5, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(200)]
    ceilings = [min(60, 2 * 2**n) for n in range(200)]
    assert all(c * 0.5 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    assert max(delays) <= 60
    # Jitter really varies the delays at the cap.
    assert len({round(d, 6) for d in delays[10:]}) > 100


def test_reset_starts_again_from_base() -> None:
    backoff = Backoff(base=1, cap=100, jitter=0)
    for _ in range(5):
        backoff.next_delay()
    backoff.reset()
    assert backoff.attempts == 0
    assert backoff.next_delay() == 1


def test_huge_attempt_counts_do_not_overflow() -> None:
    backoff = Backoff(base=1, cap=5, jitter=0)
    backoff.attempts = 10_000
    assert backoff.next_delay() == 5


@pytest.mark.parametrize(
    "kwargs",
    [{"base": 0}, {"base": 5, "cap": 1}, {"factor": 0.5}, {"jitter": 1.5}, {"jitter": -0.1}],
)
def test_nonsense_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


async def test_sleep_waits_for_the_delay_it_returns() -> None:
    backoff = Backoff(base=0.05, cap=1, jitter=0)
    start = time.monotonic()
    delay = await backoff.sleep()
    assert delay == 0.05
    assert time.monotonic() - start >= 0.045
