"""The long-running worker: APScheduler 3.x (it lives only in this module) runs the jobs from
[schedule] on cron triggers in the configured time zone.

One executor thread runs every job, so fetch and digest never overlap inside a worker and a
start-up sequence (--run-now or the catch-up after downtime) runs before any cron job. The
main thread only waits for SIGTERM/SIGINT; on a signal nothing new starts, the running job
gets [schedule] stop_grace_seconds to finish and is otherwise abandoned (recorded, lease
released): its open transaction dies with the process, so the store holds only complete
batches.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tracker.config import Config, cron_trigger, previous_fire_time
from tracker.errors import ConfigError
from tracker.pipeline import utcnow
from tracker.pipeline.cycle import PIPELINE, Runner, digest_due, jobs_behind
from tracker.store.db import describe_error

log = logging.getLogger("tracker.worker")


def triggers(config: Config) -> dict:
    """job id -> CronTrigger, from [schedule] in its time zone (ConfigError if invalid)."""
    zone = ZoneInfo(config.schedule.timezone)
    result = {}
    for job in PIPELINE:
        expression = getattr(config.schedule, job)
        try:
            result[job] = cron_trigger(expression, zone)
        except ValueError as exc:
            raise ConfigError(f"{config.source}: key 'schedule.{job}': invalid cron "
                              f"expression {expression!r} ({exc})") from None
    return result


def next_fire_times(config: Config, now: datetime) -> dict[str, datetime]:
    """When each job fires next after `now`, in UTC (pure; `tracker status` shows these)."""
    after = now + timedelta(microseconds=1)  # strictly after: a fire time == now is due now
    fires = {job: trigger.get_next_fire_time(None, after)
             for job, trigger in triggers(config).items()}
    return {job: fire.astimezone(UTC) if fire else None for job, fire in fires.items()}


def build_scheduler(config: Config, run: Callable[[str], None]):
    """A BackgroundScheduler with one job per [schedule] entry calling run(job_id)."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    scheduler = BackgroundScheduler(
        timezone=ZoneInfo(config.schedule.timezone),
        executors={"default": ThreadPoolExecutor(max_workers=1)},
        job_defaults={
            "coalesce": True,  # several missed fire times run once
            "max_instances": 1,
            "misfire_grace_time": config.schedule.misfire_grace_seconds,
        },
    )
    for job, trigger in triggers(config).items():
        scheduler.add_job(run, trigger, args=[job], id=job, name=job, replace_existing=True)
    return scheduler


class Worker:
    def __init__(self, runner: Runner, stop_grace: float | None = None) -> None:
        self.runner = runner
        self.config = runner.app.config
        # Default 5 s: under Docker's default 10 s between SIGTERM and SIGKILL.
        self.stop_grace = (self.config.schedule.stop_grace_seconds if stop_grace is None
                           else stop_grace)
        self.stop = threading.Event()
        self.stop_reason = ""
        # job -> when its start-up run ended: a cron fire of that job during the start-up
        # run was queued behind it and has nothing left to do
        self._startup_ended: dict[str, datetime] = {}

    def install_signal_handlers(self) -> dict:
        """SIGTERM/SIGINT ask the worker to stop; returns the previous handlers."""
        def handler(signum, _frame):
            self.stop_reason = signal.Signals(signum).name
            self.stop.set()

        return {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    @staticmethod
    def restore_signal_handlers(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def run_scheduled(self, job: str) -> None:
        """A cron run. After each fetch, a digest that is still due (its send failed, or
        another worker was stopped before sending it) is retried."""
        ended = self._startup_ended.pop(job, None)
        if ended is not None:
            schedule = self.config.schedule
            fired = previous_fire_time(getattr(schedule, job), schedule.timezone,
                                       self.runner.clock())
            if fired is not None and fired <= ended:
                log.info("%s: skipped, the start-up run covered this fire time", job,
                         extra={"fields": {"event": "skipped", "job": job}})
                return
        self._run(job)
        if job == "fetch" and not self.runner.stopping.is_set() and self._digest_overdue():
            log.info("digest: overdue, sending it after the fetch",
                     extra={"fields": {"event": "overdue", "job": "digest"}})
            self._run("digest")

    def _digest_overdue(self) -> bool:
        try:
            return digest_due(self.runner.app, utcnow())
        except Exception as exc:  # the next cron run asks again
            log.error("digest: cannot check whether it is due: %s", describe_error(exc))
            return False

    def _run(self, job: str) -> None:
        try:
            self.runner.run_job(job)
        except Exception as exc:  # e.g. the database is unreachable: log, keep serving
            error = describe_error(exc)  # one line (SQLAlchemy appends a second)
            log.error("%s: could not run: %s", job, error, extra={"fields": {
                "job": job, "event": "error", "error": error}})
            log.debug("%s: traceback", job, exc_info=True)

    def _startup(self, jobs: list[str], why: str) -> None:
        log.info("start-up run (%s): %s", why, ", ".join(jobs),
                 extra={"fields": {"event": "startup", "jobs": jobs, "reason": why}})
        for job in PIPELINE:
            if job in jobs:
                self._run(job)
                self._startup_ended[job] = self.runner.clock()

    def serve(self, run_now: bool = False) -> bool:
        """Run until a signal arrives. Returns False if a job had to be abandoned (the
        caller must then exit without waiting for that job's thread)."""
        scheduler = build_scheduler(self.config, self.run_scheduled)
        scheduler.start(paused=True)
        tz = self.config.schedule.timezone
        for job in scheduler.get_jobs():
            log.info("%s: next run %s (%s)", job.id, job.next_run_time.isoformat(), tz,
                     extra={"fields": {"event": "scheduled", "job": job.id,
                                       "next_run": job.next_run_time.isoformat()}})
        jobs, why = (list(PIPELINE), "--run-now") if run_now else (
            jobs_behind(self.runner.app, utcnow()), "missed while the worker was down")
        if jobs:
            scheduler.add_job(self._startup, args=[jobs, why], id="startup", name="startup")
        scheduler.resume()
        while not self.stop.wait(1.0):
            pass
        log.info("stopping (%s)", self.stop_reason or "requested",
                 extra={"fields": {"event": "stopping", "signal": self.stop_reason}})
        self.runner.request_stop()  # queued jobs are skipped from now on
        scheduler.shutdown(wait=False)
        try:
            self.runner.record_unrecorded()
        except Exception as exc:  # noqa: BLE001 - the lease then expires after lock_ttl_seconds
            log.error("could not record the end of an earlier run: %s", exc)
        if self.runner.wait_idle(self.stop_grace):
            log.info("stopped", extra={"fields": {"event": "stopped"}})
            return True
        try:
            self.runner.abandon(f"worker stopped by {self.stop_reason or 'request'}")
        except Exception as exc:  # the lease then expires after lock_ttl_seconds
            log.error("could not record the abandoned run: %s", exc)
        log.info("stopped (a job was abandoned)", extra={"fields": {"event": "stopped"}})
        return False
