"""Digest use cases (issue 5). CONTRACT used by the worker; the digest work replaces the body.

    send_digest(app, *, now, dry_run=False, force=False) -> DigestOutcome
        Period = (end of the last sent digest, or now - 7 days) .. latest digest cron fire
        time <= now (tracker.config.previous_fire_time). Exactly once per period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class DigestOutcome:
    status: str  # sent | already_sent | empty_skipped | no_recipients | dry_run
    message: str
    item_count: int = 0


def send_digest(app, *, now: datetime, dry_run: bool = False, force: bool = False) -> DigestOutcome:
    raise NotImplementedError("digest is being built (issue 5)")
