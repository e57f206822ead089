"""The worker's schedule comes from [schedule]: cron in the configured zone, APScheduler job
options, and a bad expression stops the worker at start-up with exit code 2."""

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from tracker.cli import cli
from tracker.config import from_dict, previous_fire_time
from tracker.scheduler import build_scheduler, next_fire_times


def _config(**schedule):
    return from_dict({"schedule": schedule, "feeds": []})


def test_jobs_from_config_with_stable_ids_and_options():
    config = _config(timezone="Europe/Berlin", fetch="30 6 * * *", digest="0 8 * * mon",
                     misfire_grace_seconds=900)
    scheduler = build_scheduler(config, lambda job: None)
    scheduler.start(paused=True)
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"fetch", "digest"}
        for job in jobs.values():
            assert job.coalesce is True and job.max_instances == 1
            assert job.misfire_grace_time == 900
            assert job.args == (job.id,)
            assert str(job.trigger.timezone) == "Europe/Berlin"
        assert jobs["fetch"].next_run_time.hour == 6 and jobs["fetch"].next_run_time.minute == 30
        assert jobs["digest"].next_run_time.weekday() == 0
    finally:
        scheduler.shutdown(wait=False)


def test_next_fire_times_follow_the_zone_and_daylight_saving():
    config = _config(timezone="Europe/Berlin", fetch="30 6 * * *", digest="0 8 * * mon")
    winter = next_fire_times(config, datetime(2026, 1, 5, 6, 0, tzinfo=UTC))  # a Monday
    assert winter["fetch"] == datetime(2026, 1, 6, 5, 30, tzinfo=UTC)  # 06:30 CET passed
    assert winter["digest"] == datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    summer = next_fire_times(config, datetime(2026, 7, 6, 4, 0, tzinfo=UTC))  # 06:00 CEST
    assert summer["fetch"] == datetime(2026, 7, 6, 4, 30, tzinfo=UTC)
    assert summer["digest"] == datetime(2026, 7, 6, 6, 0, tzinfo=UTC)


def test_weekdays_are_numbered_as_cron_numbers_them():
    """0 and 7 are Sunday, 1 is Monday (APScheduler's own crontab reader starts at Monday=0)."""
    friday = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    expected = {"1": "Mon 07", "0": "Sun 06", "7": "Sun 06", "mon": "Mon 07", "6": "Sat 05",
                "1-5": "Mon 07", "sat,sun": "Sat 05", "*/2": "Sat 05", "5-7": "Sat 05"}
    for field, day in expected.items():
        fire = next_fire_times(_config(digest=f"0 8 * * {field}"), friday)["digest"]
        assert fire.strftime("%a %d") == day, field
    week = [next_fire_times(_config(digest="0 8 * * 1-5"), datetime(2026, 12, d, 9, tzinfo=UTC))
            ["digest"].strftime("%a") for d in range(7, 12)]
    assert week == ["Tue", "Wed", "Thu", "Fri", "Mon"]


def test_bad_cron_expression_stops_the_worker_with_exit_2(tmp_path):
    config = tmp_path / "tracker.toml"
    config.write_text('[schedule]\nfetch = "61 * * * *"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "worker"])
    assert result.exit_code == 2
    assert "schedule.fetch" in result.output and str(config) in result.output


def test_unknown_time_zone_stops_the_worker_with_exit_2(tmp_path):
    config = tmp_path / "tracker.toml"
    config.write_text('[schedule]\ntimezone = "Mars/Olympus"\n')
    result = CliRunner().invoke(cli, ["--config", str(config), "worker", "--run-now"])
    assert result.exit_code == 2 and "schedule.timezone" in result.output


def test_worker_refuses_an_outdated_schema_before_running_anything(db_url):
    from sqlalchemy import text

    from tracker.store import db

    engine = db.make_engine(db_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000_old'"))
    engine.dispose()
    for command in (["worker", "--run-now"], ["run"], ["status"]):
        result = CliRunner().invoke(cli, command, env={"TRACKER_DATABASE_URL": db_url})
        assert result.exit_code == 1, (command, result.output)
        assert "tracker db upgrade" in result.output


@pytest.mark.parametrize("cron,zone,night", [
    ("30 2 * * *", "Europe/Berlin", datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
    ("0 * * * *", "Europe/Berlin", datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
    ("*/30 * * * *", "Europe/Berlin", datetime(2026, 10, 24, 22, 0, tzinfo=UTC)),
    ("30 1 * * *", "America/New_York", datetime(2026, 11, 1, 3, 0, tzinfo=UTC)),
    ("30 2 * * *", "Europe/Berlin", datetime(2027, 3, 27, 22, 0, tzinfo=UTC)),  # spring
])
def test_the_last_fire_time_across_a_dst_change(cron, zone, night):
    """The hour repeated when clocks go back once sent the search into an endless loop
    (the worker, `tracker run` and the digest commands hung for a day)."""
    import signal

    def hung(*_):
        raise AssertionError(f"previous_fire_time({cron!r}, {zone!r}) does not return")

    signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        last = None
        for minutes in range(0, 8 * 60, 10):
            now = night + timedelta(minutes=minutes)
            fire = previous_fire_time(cron, zone, now)
            assert fire <= now and (last is None or fire >= last)
            if cron == "0 * * * *":  # whole-hour offsets: the hour just begun, in UTC,
                assert fire == now.replace(minute=0)  # both of the repeated ones
            assert now - fire <= (timedelta(hours=1) if "* * * *" in cron
                                  else timedelta(days=1, hours=1))
            last = fire
    finally:
        signal.alarm(0)


def test_a_job_at_a_set_hour_fires_once_on_the_night_clocks_go_back():
    """Berlin, 25 Oct 2026: 02:30 comes at 00:30 and again at 01:30 UTC. The second is
    no new fire time for a job at 02:30 (cron runs it once); for an hourly job each of the
    two 02:00s is a real hour."""
    second = datetime(2026, 10, 25, 1, 31, tzinfo=UTC)
    for cron in ("30 2 * * sun", "30 2 * * *", "30 1-3 * * *", "0,30 2 * * sun",
                 "*/30 2 * * *"):
        assert previous_fire_time(cron, "Europe/Berlin", second) == \
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC), cron
    # the second 02:00 of a job at 02:00 and 02:30 is no new fire time either
    assert previous_fire_time("0,30 2 * * sun", "Europe/Berlin", second.replace(minute=5)) == \
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert previous_fire_time("0 * * * *", "Europe/Berlin", second) == \
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC)
    # the next night, while the search's first day opens between the two 02:30s
    for hour in (0, 1):
        assert previous_fire_time("30 2 * * sun", "Europe/Berlin",
                                  datetime(2026, 10, 26, hour, 45, tzinfo=UTC)) == \
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    # a week on, the same job's fire time is that Sunday's 02:30 (now at +01:00)
    assert previous_fire_time("30 2 * * sun", "Europe/Berlin", second + timedelta(days=7)) == \
        datetime(2026, 11, 1, 1, 30, tzinfo=UTC)
