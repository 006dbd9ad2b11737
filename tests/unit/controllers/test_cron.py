from __future__ import annotations

from datetime import UTC, datetime

import pytest

from controlplane.controllers.cron import CronError, most_recent, parse
from controlplane.controllers.cronjob import history_to_delete, job_from_template


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_fields_lists_ranges_steps_and_names() -> None:
    s = parse("*/15 9-17 * jan-mar mon-fri")
    assert s.minutes == frozenset({0, 15, 30, 45})
    assert s.hours == frozenset(range(9, 18))
    assert s.months == frozenset({1, 2, 3})
    assert s.dows == frozenset({1, 2, 3, 4, 5})
    assert parse("@hourly") == parse("0 * * * *")
    assert parse("0 0 * * 7").dows == frozenset({0}), "7 is Sunday too"


def test_next_after_skips_to_matching_day_and_time() -> None:
    s = parse("30 2 * * mon")
    assert s.next_after(at("2026-11-23T13:00:00")) == at("2026-11-30T02:30:00")  # 2026-11-23 is a Monday
    assert parse("* * * * *").next_after(at("2026-01-01T00:00:30")) == at("2026-01-01T00:01:00")


def test_day_of_month_and_day_of_week_or_together_when_both_restricted() -> None:
    s = parse("0 0 13 * fri")
    assert s.next_after(at("2026-11-01T00:00:00")) == at("2026-11-06T00:00:00")  # a Friday before the 13th


def test_most_recent_reports_latest_missed_time() -> None:
    s = parse("*/10 * * * *")
    latest, missed = most_recent(s, at("2026-01-01T00:00:00").timestamp(), at("2026-01-01T00:35:00").timestamp())
    assert latest == at("2026-01-01T00:30:00").timestamp()
    assert missed == 3
    assert most_recent(s, at("2026-01-01T00:31:00").timestamp(), at("2026-01-01T00:35:00").timestamp()) == (None, 0)


def test_bad_schedules_are_rejected() -> None:
    for bad in ("* * * *", "61 * * * *", "*/0 * * * *", "x * * * *"):
        with pytest.raises(CronError):
            parse(bad)


def test_job_names_are_deterministic_per_scheduled_minute_and_history_is_trimmed() -> None:
    cj = {
        "metadata": {"name": "nightly", "namespace": "d", "uid": "u"},
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "spec": {"jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {"template": {}}}},
    }
    job = job_from_template(cj, at("2026-01-01T00:10:00").timestamp())
    assert job["metadata"]["name"] == f"nightly-{int(at('2026-01-01T00:10:00').timestamp() // 60)}"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u"

    def done(name: str, kind: str) -> dict[str, object]:
        return {
            "metadata": {"name": name, "creationTimestamp": f"2026-01-01T00:0{name[-1]}:00Z"},
            "status": {"conditions": [{"type": kind, "status": "True"}]},
        }

    jobs = [done("ok1", "Complete"), done("ok2", "Complete"), done("bad3", "Failed"), done("bad4", "Failed")]
    assert [j["metadata"]["name"] for j in history_to_delete(jobs, 1, 1)] == ["ok1", "bad3"]
