"""Load and validate the TOML config.

Lookup order: --config PATH, $TRACKER_CONFIG, ./config/tracker.toml, built-in defaults.
Secrets never live in the file: the SMTP password comes from $TRACKER_SMTP_PASSWORD and the
database URL may be overridden (with its password) by $TRACKER_DATABASE_URL.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from tracker.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/tracker.toml")
DEFAULT_DATABASE_URL = "sqlite:///data/tracker.db"
ENV_CONFIG = "TRACKER_CONFIG"
ENV_DATABASE_URL = "TRACKER_DATABASE_URL"
ENV_SMTP_PASSWORD = "TRACKER_SMTP_PASSWORD"

HttpUrl = Annotated[str, Field(min_length=1)]


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Section):
    url: str = DEFAULT_DATABASE_URL

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("expected a sqlite:/// or postgresql+psycopg:// URL")
        return value


class ArxivConfig(_Section):
    enabled: bool = True
    categories: list[str] = [
        "q-bio.NC", "cs.NE", "cs.LG", "cs.AI", "stat.ML", "cs.CV", "cs.CL", "eess.SP",
    ]
    query: str = ""
    api_url: HttpUrl = "https://export.arxiv.org/api/query"
    delay_seconds: float = Field(3.0, ge=0)
    page_size: int = Field(200, ge=1, le=2000)
    lookback_days: int = Field(7, ge=1, le=365)
    overlap_hours: int = Field(48, ge=0, le=24 * 30)
    timeout_seconds: float = Field(30.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)

    _url = field_validator("api_url")(classmethod(lambda cls, v: _check_http_url(v)))


class FeedConfig(_Section):
    name: str = Field(min_length=1)
    url: HttpUrl
    enabled: bool = True

    _url = field_validator("url")(classmethod(lambda cls, v: _check_http_url(v)))


class FeedFetchConfig(_Section):
    timeout_seconds: float = Field(20.0, gt=0)
    max_bytes: int = Field(10_000_000, ge=1024)
    user_agent: str = "neuroai-tracker/0.1 (+https://github.com/neuroai-tracker)"


class RelevanceConfig(_Section):
    threshold: float = Field(0.5, ge=0, le=1)
    model_path: str = "data/model.joblib"
    keywords: dict[str, float] = {
        "neuroscience": 1.0,
        "neural recordings": 1.5,
        "brain": 1.0,
        "spiking neural network": 1.5,
        "neuromorphic": 1.5,
        "predictive coding": 1.5,
        "biologically plausible": 1.5,
        "fmri": 1.5,
        "eeg": 1.0,
        "visual cortex": 1.5,
        "hippocampus": 1.5,
        "neural data": 1.0,
        "brain-computer interface": 1.5,
        "dendritic": 1.5,
        "large language model": -0.5,
    }
    seed_papers: list[str] = ["2210.08340", "2209.03718"]

    @field_validator("keywords")
    @classmethod
    def _nonempty_phrases(cls, value: dict[str, float]) -> dict[str, float]:
        for phrase, weight in value.items():
            if not phrase.strip():
                raise ValueError("keyword phrases must not be empty")
            if abs(weight) > 10:
                raise ValueError(f"weight of {phrase!r} must be between -10 and 10")
        return value


class ScheduleConfig(_Section):
    timezone: str = "UTC"
    fetch: str = "0 6 * * *"
    digest: str = "0 8 * * mon"
    misfire_grace_seconds: int = Field(6 * 3600, ge=1)
    lock_ttl_seconds: int = Field(3 * 3600, ge=60)
    stop_grace_seconds: float = Field(5.0, ge=0, le=3600)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. 'Europe/Berlin')") from None
        return value

    @field_validator("fetch", "digest")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(
                f"expected a 5-field cron expression like '0 8 * * mon' ({exc})"
            ) from None
        return value


class DigestConfig(_Section):
    recipients: list[str] = []
    sender: str = "neuroai-tracker@localhost"
    subject: str = "NeuroAI digest: {start:%d %b} to {end:%d %b %Y}"
    max_items: int = Field(30, ge=1, le=1000)
    min_score: float = Field(0.5, ge=0, le=1)
    send_empty: bool = True
    include_updates: bool = False
    list_id: str = "NeuroAI tracker digest <digest.neuroai-tracker.local>"
    unsubscribe: str = ""

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address:
                raise ValueError(f"{address!r} is not an email address")
        return value


class SmtpConfig(_Section):
    host: str = "localhost"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    timeout_seconds: float = Field(30.0, gt=0)


class Config(_Section):
    database: DatabaseConfig = DatabaseConfig()
    arxiv: ArxivConfig = ArxivConfig()
    feeds: list[FeedConfig] = [
        FeedConfig(name="xcorr", url="https://xcorr.net/feed/"),
        FeedConfig(name="the-transmitter", url="https://www.thetransmitter.org/feed/"),
        FeedConfig(name="colah", url="https://colah.github.io/rss.xml"),
        FeedConfig(name="lilian-weng", url="https://lilianweng.github.io/index.xml"),
    ]
    feed_fetch: FeedFetchConfig = FeedFetchConfig()
    relevance: RelevanceConfig = RelevanceConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    digest: DigestConfig = DigestConfig()
    smtp: SmtpConfig = SmtpConfig()

    # Where the config came from ("<defaults>" when no file was found); not a TOML key.
    _source: str = PrivateAttr("<defaults>")

    @property
    def source(self) -> str:
        return self._source

    @field_validator("feeds")
    @classmethod
    def _unique_feed_names(cls, value: list[FeedConfig]) -> list[FeedConfig]:
        names = [feed.name for feed in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"feed names must be unique; repeated: {', '.join(duplicates)}")
        if "arxiv" in names:
            raise ValueError("'arxiv' is reserved for the arXiv source; pick another feed name")
        return value

    @property
    def database_url(self) -> str:
        """The effective database URL: $TRACKER_DATABASE_URL wins over the file."""
        return os.environ.get(ENV_DATABASE_URL) or self.database.url

    @property
    def smtp_password(self) -> str | None:
        return os.environ.get(ENV_SMTP_PASSWORD) or None

    def relevance_hash(self) -> str:
        """Hash of everything that changes scores; stored with every score."""
        payload = json.dumps(self.relevance.model_dump(), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def masked(self) -> dict:
        """The effective config as a dict, safe to print: no password anywhere."""
        data = self.model_dump()
        data["database"]["url"] = mask_url(self.database_url)
        data["smtp"]["password"] = "***" if self.smtp_password else "(unset)"
        return data


def previous_fire_time(cron: str, timezone: str, now: datetime) -> datetime | None:
    """The latest time at or before `now` when `cron` fired (None if not within a year).
    Pure; used to align digest periods to the schedule."""
    from apscheduler.triggers.cron import CronTrigger

    trigger = CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))
    for window in (timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367)):
        last = None
        fire = trigger.get_next_fire_time(None, now - window)
        while fire is not None and fire <= now:
            last = fire
            fire = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
        if last is not None:
            return last.astimezone(UTC)
    return None


def mask_url(url: str) -> str:
    """Replace the password in a URL with ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def resolve_path(explicit: str | os.PathLike | None) -> Path | None:
    """Which config file to read, or None for built-in defaults."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    if DEFAULT_CONFIG_PATH.is_file():
        return DEFAULT_CONFIG_PATH
    return None


def load(explicit: str | os.PathLike | None = None) -> Config:
    """Load, validate and return the config; raise ConfigError naming file and key."""
    path = resolve_path(explicit)
    if path is None:
        return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist",
                          hint="pass --config PATH or copy config/tracker.toml") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return from_dict(raw, source=str(path))


def from_dict(raw: dict, *, source: str = "<dict>") -> Config:
    try:
        config = Config(**raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    except TypeError as exc:  # e.g. a table where a scalar belongs
        raise ConfigError(f"{source}: {exc}") from None
    config._source = source
    return config


def _describe(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            what = "unknown key"
        else:
            what = error["msg"].removeprefix("Value error, ")
            if "input" in error and not isinstance(error["input"], dict | list):
                what += f" (got {error['input']!r})"
        lines.append(f"{source}: key '{key}': {what}")
    return "\n".join(lines)
