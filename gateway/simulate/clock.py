"""Time: the campaign calendar and human activity (a diurnal cycle and the festival evening).

Honest delays are drawn in *activity time* and mapped back to the wall clock: one activity hour is
one wall-clock hour at the baseline rate, a few minutes at the festival peak and several hours at
4 am. Friends therefore answer a shared link quickly at 21:00 on New Year's Eve and slowly at night,
and the event rate follows the intensity without a separate thinning step.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timedelta, timezone

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
HOUR = 3600.0

#: Relative activity per local hour on an ordinary (working) day.
_WORKDAY = (
    0.45, 0.25, 0.15, 0.10, 0.08, 0.10, 0.22, 0.55, 0.90, 1.05, 1.15, 1.25,
    1.35, 1.20, 1.10, 1.15, 1.20, 1.30, 1.45, 1.65, 1.85, 1.90, 1.60, 0.95,
)  # fmt: skip
#: The Spring Festival break (from 2026-02-15): later nights, later mornings.
_HOLIDAY = (
    0.65, 0.40, 0.25, 0.14, 0.10, 0.10, 0.14, 0.30, 0.60, 0.90, 1.10, 1.25,
    1.35, 1.30, 1.25, 1.25, 1.30, 1.40, 1.55, 1.75, 1.90, 1.95, 1.70, 1.10,
)  # fmt: skip
_NORM = sum(_WORKDAY) / 24.0
_HOLIDAY_STARTS = datetime(2026, 2, 15, tzinfo=SHANGHAI)

#: Multipliers on top of the diurnal profile, per local (month, day, hour); the eve is 2026-02-16.
#: Gala evening (Chunwan) and the red-packet rush: 20:00-23:00 on the eve runs at ~17.5x the
#: average hour of the campaign's ordinary days..
_FESTIVAL: dict[tuple[int, int, int], float] = {
    **{(2, 16, h): 1.5 for h in range(9, 14)},
    **{(2, 16, h): 2.4 for h in range(14, 17)},
    (2, 16, 17): 3.6,
    (2, 16, 18): 5.5,
    (2, 16, 19): 8.0,
    (2, 16, 20): 10.0,
    (2, 16, 21): 10.0,
    (2, 16, 22): 10.5,
    (2, 16, 23): 9.0,
    (2, 17, 0): 6.5,
    (2, 17, 1): 2.5,
    (2, 17, 2): 1.6,
    **{(2, 17, h): 1.7 for h in range(8, 24)},
    **{(2, 18, h): 1.3 for h in range(8, 24)},
}


FESTIVAL_DAYS = ((2, 16), (2, 17))


def intensity_at(moment: datetime) -> float:
    """Activity at a local moment (1.0 = an average hour of an ordinary day)."""
    local = moment.astimezone(SHANGHAI)
    profile = _HOLIDAY if local >= _HOLIDAY_STARTS else _WORKDAY
    boost = _FESTIVAL.get((local.month, local.day, local.hour), 1.0)
    return profile[local.hour] / _NORM * boost


class Calendar:
    """Hourly activity from ``origin`` (an hour boundary) for ``hours`` hours; 1.0 beyond."""

    def __init__(self, origin: float, hours: int) -> None:
        self.origin = origin
        start = datetime.fromtimestamp(origin, SHANGHAI)
        self.rates = [intensity_at(start + timedelta(hours=h)) for h in range(hours)]
        self.cumulative = [0.0]
        for rate in self.rates:
            self.cumulative.append(self.cumulative[-1] + rate)

    def rate(self, ts: float) -> float:
        index = int((ts - self.origin) // HOUR)
        return self.rates[index] if 0 <= index < len(self.rates) else 1.0

    def activity(self, ts: float) -> float:
        """Activity hours elapsed since the origin at ``ts``."""
        x = (ts - self.origin) / HOUR
        if x <= 0:
            return x
        index = int(x)
        if index >= len(self.rates):
            return self.cumulative[-1] + (x - len(self.rates))
        return self.cumulative[index] + (x - index) * self.rates[index]

    def moment(self, activity: float) -> float:
        """The wall-clock time at which ``activity`` activity hours have elapsed."""
        if activity <= 0:
            return self.origin + activity * HOUR
        if activity >= self.cumulative[-1]:
            return self.origin + (len(self.rates) + activity - self.cumulative[-1]) * HOUR
        index = bisect_right(self.cumulative, activity) - 1
        return (
            self.origin + (index + (activity - self.cumulative[index]) / self.rates[index]) * HOUR
        )

    def after(self, ts: float, activity_hours: float) -> float:
        """``ts`` plus a human delay measured in activity hours."""
        return self.moment(self.activity(ts) + activity_hours)

    @staticmethod
    def local_hour(ts: float) -> int:
        return int(((ts + 8 * HOUR) % 86400.0) // HOUR)

    @staticmethod
    def local_day(ts: float) -> tuple[int, int]:
        local = datetime.fromtimestamp(ts, SHANGHAI)
        return local.month, local.day


def at_local(year: int, month: int, day: int, hour: int, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, SHANGHAI).isoformat(timespec="seconds")
