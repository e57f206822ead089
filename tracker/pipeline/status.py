"""`tracker status`: what the service has stored, what ran, what runs next, and how each
source is doing. `collect` returns plain JSON-ready data; `render_table` formats it."""

from __future__ import annotations

from datetime import datetime

from tracker.config import mask_url
from tracker.pipeline import App, utcnow
from tracker.pipeline.cycle import holder_gone
from tracker.store import runs
from tracker.store.db import sqlite_path
from tracker.store.digests import reported_status


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _run(row, running: set[str]) -> dict:
    """`running`: the jobs whose lease a live process holds. A run still marked running
    without one was killed; the job's next run records it as abandoned."""
    outcome, error = row.outcome, row.error
    if outcome == "running" and row.job not in running:
        outcome, error = "abandoned", "its process stopped before finishing"
    return {"id": row.id, "job": row.job, "started_at": _iso(row.started_at),
            "finished_at": _iso(row.finished_at), "outcome": outcome,
            "counts": row.counts or {}, "error": error, "host": row.host, "pid": row.pid}


def _sources(config, rows) -> list[dict]:
    state = {row.name: row for row in rows}
    configured = (["arxiv"] if config.arxiv.enabled else []) + [
        feed.name for feed in config.feeds if feed.enabled]
    result = []
    for name in configured + sorted(set(state) - set(configured)):
        row = state.get(name)
        failures = row.consecutive_failures if row else 0
        health = ("never fetched" if row is None or row.last_attempt_at is None
                  else "failing" if failures else "ok")
        result.append({
            "name": name, "configured": name in configured, "health": health,
            "last_success_at": _iso(row.last_success_at) if row else None,
            "last_error": row.last_error if row else None,
            "last_error_at": _iso(row.last_error_at) if row else None,
            "last_warning": row.last_warning if row else None,
            "consecutive_failures": failures,
        })
    return result


def collect(app: App, upcoming: dict[str, datetime], now: datetime | None = None) -> dict:
    """`upcoming`: job -> next fire time (tracker.scheduler.next_fire_times)."""
    now = now or utcnow()
    config = app.config
    with app.sessions() as session:
        counts = runs.store_counts(session)
        locks = [{"job": lk.name, "holder": lk.holder, "since": _iso(lk.acquired_at),
                  "expires_at": _iso(lk.expires_at), "holder_gone": holder_gone(lk.holder)}
                 for lk in runs.live_locks(session, now)]
        running = {lock["job"] for lock in locks if not lock["holder_gone"]}
        last = {job: _run(row, running) for job, row in runs.last_runs_by_job(session).items()}
        recent = [_run(row, running) for row in runs.recent_runs(session, 10)]
        sources = _sources(config, runs.source_health(session))
        digest = runs.last_digest(session)
    jobs = [{"job": job, "schedule": getattr(config.schedule, job),
             "timezone": config.schedule.timezone, "next_run": _iso(upcoming[job]),
             "last_run": last.get(job)} for job in upcoming]
    return {
        "now": _iso(now),
        "database": mask_url(config.database_url),
        "database_file": str(file) if (file := sqlite_path(config.database_url)) else None,
        "store": counts,
        "jobs": jobs,
        "running": locks,
        "recent_runs": recent,
        "sources": sources,
        "last_digest": None if digest is None else {
            "period_start": _iso(digest.period_start), "period_end": _iso(digest.period_end),
            "status": reported_status(digest), "sent_at": _iso(digest.sent_at),
            "recipients": len(digest.recipients or []), "error": digest.error,
        },
    }


def _when(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "-"


def _table(headers: list[str], rows: list[list]) -> list[str]:
    cells = [headers] + [["-" if c in (None, "") else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells]


def render_table(report: dict) -> str:
    store = report["store"]
    where = report["database"]
    if report["database_file"] and not where.endswith(report["database_file"]):
        where += f" ({report['database_file']})"  # a relative path, as it is read here
    lines = [f"database  {where}",
             "store     " + ", ".join(f"{v} {k}" for k, v in store.items()), "", "jobs"]
    job_rows = []
    for job in report["jobs"]:
        last = job["last_run"] or {}
        job_rows.append([job["job"], job["schedule"], _when(job["next_run"]) + " UTC",
                         _when(last.get("started_at")), last.get("outcome"),
                         (last.get("error") or "")[:60]])
    lines += ["  " + line for line in _table(
        ["job", "cron (" + report["jobs"][0]["timezone"] + ")", "next run", "last run",
         "outcome", "error"], job_rows)]
    for lock in report["running"]:
        if lock["holder_gone"]:  # killed or crashed: the next run of the job takes over
            lines.append(f"  {lock['job']}: lease of {lock['holder']}, a process of this "
                         f"machine that is gone (it expires {_when(lock['expires_at'])} UTC)")
        else:
            lines.append(f"  running now: {lock['job']} on {lock['holder']} since "
                         f"{_when(lock['since'])} UTC")
    lines += ["", "sources"]
    lines += ["  " + line for line in _table(
        ["source", "health", "last success", "failures", "last error", "warning"],
        [[s["name"], s["health"], _when(s["last_success_at"]), s["consecutive_failures"],
          (s["last_error"] or "")[:50], (s["last_warning"] or "")[:50]]
         for s in report["sources"]])]
    digest = report["last_digest"]
    lines += ["", "last digest  " + ("none yet" if digest is None else
              f"{digest['status']}, period {_when(digest['period_start'])} .. "
              f"{_when(digest['period_end'])} UTC, {digest['recipients']} recipient(s)"
              + (f"; {digest['error']}" if digest["error"] else ""))]
    return "\n".join(lines)
