""""Usually free by": the decision rule of core/prediction.py, yes and no cases, exactly."""

from __future__ import annotations

from gpu_tray.core.prediction import HourEvidence, evidence, usually_free_by

H = 3600
WEEK = 7 * 86_400
NOW = 1_780_000_000 - 1_780_000_000 % H + 1234  # 20 min 34 s past a whole hour
NEXT = NOW - NOW % H + H  # the first candidate hour


def week_hour(w: int, k: int, free: bool, quarter: int = 0) -> tuple[int, bool]:
    """A 15-minute bucket in candidate hour k, w weeks ago."""
    return (NEXT + k * H - w * WEEK + quarter * 900, free)


def test_three_free_weeks_of_three_say_free_by_the_end_of_that_hour():
    quarters = sorted(week_hour(w, 5, True) for w in (1, 2, 3))
    assert usually_free_by(quarters, NOW) == NEXT + 6 * H
    assert evidence(quarters, NOW)[5] == HourEvidence(NEXT + 5 * H, 3, 3)


def test_two_weeks_are_not_enough():
    quarters = sorted(week_hour(w, 5, True) for w in (1, 2))
    assert usually_free_by(quarters, NOW) is None


def test_three_of_four_weeks_is_75_percent_and_enough_two_of_four_is_not():
    three = sorted([week_hour(w, 2, True) for w in (1, 2, 3)] + [week_hour(4, 2, False)])
    assert usually_free_by(three, NOW) == NEXT + 3 * H
    two = sorted([week_hour(w, 2, True) for w in (1, 2)] + [week_hour(w, 2, False) for w in (3, 4)])
    assert usually_free_by(two, NOW) is None


def test_one_free_quarter_makes_the_hour_free_and_the_first_qualifying_hour_wins():
    quarters = []
    for w in (1, 2, 3):
        quarters += [week_hour(w, 7, False, q) for q in range(4)]
        quarters[-1] = week_hour(w, 7, True, 3)
        quarters += [week_hour(w, 9, True)]
    assert usually_free_by(sorted(quarters), NOW) == NEXT + 8 * H


def test_weeks_older_than_eight_and_hours_past_the_horizon_do_not_count():
    old = sorted(week_hour(w, 1, True) for w in (9, 10, 11))
    assert usually_free_by(old, NOW) is None
    far = sorted(week_hour(w, 24, True) for w in (1, 2, 3))  # 25 h ahead
    assert usually_free_by(far, NOW) is None


def test_no_history_says_nothing():
    assert usually_free_by([], NOW) is None
