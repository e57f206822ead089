"""Ingest use cases (issue 3). CONTRACT used by other areas; the ingest work replaces the body.

    fetch(app, *, now=None, only=None, progress=False) -> FetchReport
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class SourceReport:
    name: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    errors: int = 0
    error: str | None = None  # set when the source failed as a whole


@dataclass
class FetchReport:
    sources: list[SourceReport] = field(default_factory=list)

    @property
    def all_failed(self) -> bool:
        return bool(self.sources) and all(s.error for s in self.sources)


def fetch(app, *, now: datetime | None = None, only: str | None = None,
          progress: bool = False) -> FetchReport:
    raise NotImplementedError("ingest is being built (issue 3)")
