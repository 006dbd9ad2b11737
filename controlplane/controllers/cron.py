"""Standard 5-field cron schedules (minute hour day-of-month month day-of-week) as CronJobs use them:
`*`, lists, ranges, steps, month/day names, `@hourly`-style macros; day-of-month and day-of-week OR
together when both are restricted (Vixie cron semantics, which Kubernetes follows)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = {
    m: i + 1 for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


class CronError(ValueError):
    pass


def _field(text: str, lo: int, hi: int, names: dict[str, int]) -> frozenset[int]:
    out: set[int] = set()
    for part in text.lower().split(","):
        rng, _, step_s = part.partition("/")
        step = int(step_s) if step_s else 1
        if step <= 0:
            raise CronError(f"bad step in {text!r}")
        if rng in ("*", "?"):
            start, end = lo, hi
        else:
            a, _, b = rng.partition("-")
            start = names[a] if a in names else int(a)
            end = (names[b] if b in names else int(b)) if b else (hi if step_s else start)
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise CronError(f"{text!r} out of range {lo}-{hi}")
        out.update(range(start, end + 1, step))
    return frozenset(out)


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    doms: frozenset[int]
    months: frozenset[int]
    dows: frozenset[int]
    dom_star: bool
    dow_star: bool

    def day_matches(self, t: datetime) -> bool:
        dom_ok = t.day in self.doms
        dow_ok = (t.isoweekday() % 7) in self.dows
        if self.dom_star or self.dow_star:
            return dom_ok and dow_ok
        return dom_ok or dow_ok

    def next_after(self, t: datetime) -> datetime:
        """The first scheduled minute strictly after `t` (within ~5 years, else CronError)."""
        cur = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = cur + timedelta(days=366 * 5)
        while cur < limit:
            if cur.month not in self.months or not self.day_matches(cur):
                cur = (cur + timedelta(days=1)).replace(hour=0, minute=0)
            elif cur.hour not in self.hours:
                cur = (cur + timedelta(hours=1)).replace(minute=0)
            elif cur.minute not in self.minutes:
                cur += timedelta(minutes=1)
            else:
                return cur
        raise CronError("schedule never fires")


def parse(spec: str) -> Schedule:
    text = MACROS.get(spec.strip().lower(), spec.strip())
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected 5 fields, got {len(fields)}: {spec!r}")
    try:
        dows = _field(fields[4], 0, 7, _DAYS)
        return Schedule(
            minutes=_field(fields[0], 0, 59, {}),
            hours=_field(fields[1], 0, 23, {}),
            doms=_field(fields[2], 1, 31, {}),
            months=_field(fields[3], 1, 12, _MONTHS),
            dows=frozenset(d % 7 for d in dows),
            dom_star=fields[2] in ("*", "?"),
            dow_star=fields[4] in ("*", "?"),
        )
    except (KeyError, ValueError) as err:
        raise CronError(f"cannot parse {spec!r}: {err}") from err


def most_recent(schedule: Schedule, since: float, now: float, tz: tzinfo = UTC) -> tuple[float | None, int]:
    """(latest scheduled time in (since, now], or None; how many were missed in that window, capped)."""
    t = datetime.fromtimestamp(since, tz)
    end = datetime.fromtimestamp(now, tz)
    latest: datetime | None = None
    missed = 0
    while missed < 1000:
        nxt = schedule.next_after(t)
        if nxt > end:
            break
        latest, t = nxt, nxt
        missed += 1
    return (latest.timestamp() if latest else None), missed
