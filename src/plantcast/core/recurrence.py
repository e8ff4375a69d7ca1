"""Weekly recurrences: "sat 06:00 8h", "mon-fri 22:00 8h", "daily 02:00 30min" (UTC).

A silence (maintenance window) may recur weekly instead of covering one range. The text is
``DAYS HH:MM DURATION``: DAYS is a day (``mon`` … ``sun``), a list (``mon,wed``), a span
(``mon-fri``) or ``daily``; each window opens at HH:MM UTC on those days and lasts DURATION
(more than 0, at most 7 days; a window may run past midnight into the next day).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

from plantcast.core.errors import InputError
from plantcast.core.timeutil import TimeLike, format_duration, parse_duration, to_utc

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
EXAMPLE = "sat 06:00 8h, mon-fri 22:00 8h, daily 02:00 30min"
WEEK = pd.Timedelta("7d")


@dataclass(frozen=True)
class Weekly:
    """Windows opening at ``minute`` (of the day, UTC) on ``days`` (0 = Monday), each
    ``length`` long."""

    days: tuple[int, ...]
    minute: int
    length: pd.Timedelta

    @classmethod
    def parse(cls, text: str, *, field: str = "every") -> Weekly:
        parts = str(text).strip().lower().split()
        if len(parts) != 3:
            raise InputError(
                f"cannot read {text!r} as a weekly recurrence: write DAYS HH:MM DURATION "
                f"(examples: {EXAMPLE}; times in UTC)",
                field=field,
            )
        days = _days(parts[0], field)
        clock = _TIME.fullmatch(parts[1])
        if clock is None:
            raise InputError(f"{parts[1]!r} is not a time of day HH:MM (UTC)", field=field)
        length = parse_duration(parts[2], field=field)
        if length <= pd.Timedelta(0) or length > WEEK:
            raise InputError(
                f"a recurring window lasts more than 0 and at most 7d, not {parts[2]!r}",
                field=field,
            )
        return cls(days, int(clock.group(1)) * 60 + int(clock.group(2)), length)

    def text(self) -> str:
        """The canonical text (what is stored and shown)."""
        days = "daily" if len(self.days) == 7 else ",".join(DAYS[d] for d in self.days)
        hh, mm = divmod(self.minute, 60)
        return f"{days} {hh:02d}:{mm:02d} {format_duration(self.length)}"

    def windows(self, start: TimeLike, end: TimeLike) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        """Every window overlapping ``[start, end)``, in time order, whole (not clipped)."""
        a, b = to_utc(start), to_utc(end)
        if b <= a:
            return []
        out = []
        # a window that opened up to ``length`` before ``a`` may still be open at ``a``
        day = (a - self.length).normalize() - pd.Timedelta("1d")
        while day < b:
            if day.dayofweek in self.days:
                opens = day + pd.Timedelta(minutes=self.minute)
                closes = opens + self.length
                if opens < b and closes > a:
                    out.append((opens, closes))
            day += pd.Timedelta("1d")
        return out

    def covers(self, ts: TimeLike) -> bool:
        """Whether ``ts`` falls inside one of the windows."""
        t = to_utc(ts)
        return bool(self.windows(t, t + pd.Timedelta("1us")))


def _days(text: str, field: str) -> tuple[int, ...]:
    if text in {"daily", "everyday", "*"}:
        return tuple(range(7))
    found: set[int] = set()
    for part in text.split(","):
        ends = part.split("-")
        if len(ends) > 2 or any(e[:3] not in DAYS or e not in _names(e[:3]) for e in ends):
            raise InputError(
                f"{text!r} names no days: use mon … sun, a list (mon,wed), a span (mon-fri) "
                "or daily",
                field=field,
            )
        lo, hi = DAYS.index(ends[0][:3]), DAYS.index(ends[-1][:3])
        span = range(lo, hi + 1) if lo <= hi else [*range(lo, 7), *range(0, hi + 1)]
        found.update(span)
    return tuple(sorted(found))


def _names(day: str) -> set[str]:
    full = {
        "mon": "monday",
        "tue": "tuesday",
        "wed": "wednesday",
        "thu": "thursday",
        "fri": "friday",
        "sat": "saturday",
        "sun": "sunday",
    }
    return {day, full[day]}
