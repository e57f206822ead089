"""Load and validate the TOML config.

Lookup order: --config PATH, $TRACKER_CONFIG, ./config/tracker.toml, built-in defaults.
Secrets never live in the file: the SMTP password comes from $TRACKER_SMTP_PASSWORD and the
database URL may be overridden (with its password) by $TRACKER_DATABASE_URL.

The sections are frozen dataclasses; from_dict() checks every key of the TOML against their
annotations and bounds (a small checker here rather than pydantic, whose import and model
building cost about 0.1 s of every command's start-up). Constructing a section directly, as
code and tests do, is not validated.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import re
import tomllib
import unicodedata
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from functools import cache
from pathlib import Path
from typing import Literal, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tracker.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("config/tracker.toml")
DEFAULT_DATABASE_URL = "sqlite:///data/tracker.db"
ENV_CONFIG = "TRACKER_CONFIG"
ENV_DATABASE_URL = "TRACKER_DATABASE_URL"
ENV_SMTP_PASSWORD = "TRACKER_SMTP_PASSWORD"


# --- checks run on a key's value after its type is checked (raise ValueError) -------------

def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"expected an http(s) URL, got {value!r}")
    return value


# the parts of a database URL as SQLAlchemy reads them (never shown: it may hold a password)
_DATABASE_URL = re.compile(r"(?P<scheme>[\w+]+)://(?:[^:/]*(?::[^@]*)?@)?"
                           r"(?:\[[^/?]+\]|[^/:?]*)(?::(?P<port>[^/?]*))?(?:/[^?]*)?(?:\?.*)?")


def _database_url(value: str) -> str:
    found = _DATABASE_URL.fullmatch(value)
    scheme = found["scheme"] if found else ""
    sqlite = scheme in ("sqlite", "sqlite+pysqlite")  # the drivers the store uses
    if not sqlite and scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError("expected a sqlite:/// or postgresql+psycopg:// URL")
    if sqlite:
        rest = value.partition("://")[2]
        if not rest.startswith("/"):  # "sqlite://x.db" names a host, and SQLite has none
            raise ValueError(f"a SQLite URL has three slashes before a relative path: "
                             f"{scheme}:///{rest or 'data/tracker.db'}")
        path = rest[1:].partition("?")[0]
        if path in ("", ":memory:"):  # an in-memory store is lost when the command ends
            raise ValueError("a SQLite URL needs a file path, e.g. sqlite:///data/tracker.db")
    if "@" in _url_host(value):
        # an '@' of the password: the driver would take the rest for the host, and name it
        raise ValueError("more than one '@' before the host: write an '@' of the user name "
                         "or password as %40")
    if found["port"] is not None and not (found["port"].isdecimal()
                                          and 0 < int(found["port"]) < 65536):
        raise ValueError("the port in the URL is not a number from 1 to 65535")
    return value


def _url_host(value: str) -> str:
    """The host as SQLAlchemy reads the URL (a password may hold '/'), or ''."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(value).host or ""
    except (ArgumentError, ValueError):
        return ""


def _keywords(value: dict[str, float]) -> dict[str, float]:
    from tracker.scoring import normalize

    seen: dict[str, str] = {}
    for phrase, weight in value.items():
        if not phrase.strip():
            raise ValueError("keyword phrases must not be empty")
        if abs(weight) > 10:
            raise ValueError(f"weight of {phrase!r} must be between -10 and 10")
        # matching ignores case, punctuation and non-ASCII letters (as in the papers' text)
        key = normalize(phrase).strip()
        if not key:
            raise ValueError(f"{phrase!r} has no letters or digits a-z, 0-9 to match")
        if key in seen:
            raise ValueError(f"{seen[key]!r} and {phrase!r} are the same phrase to the "
                             "matcher (case and punctuation aside); keep one")
        seen[key] = phrase
    for key, phrase in seen.items():
        # a phrase also matches its last word + s/es: "networks" would be counted twice
        for plural in (key + "s", key + "es"):
            if plural in seen:
                raise ValueError(f"{phrase!r} already matches {seen[plural]!r} (a keyword "
                                 "matches its plural too), so a text with it would count "
                                 "both weights; keep one")
    return value


def _time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (e.g. 'Europe/Berlin')") from None
    return value


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _cron_weekdays(field: str) -> str:
    """A cron day-of-week field (0 or 7 = Sunday, 1 = Monday, names too) as APScheduler's
    day_of_week, which counts from Monday = 0: the days spelt out by name."""
    if field == "*":
        return field
    def number(text: str) -> int:  # ValueError for anything but 0-7 or a name
        return _CRON_DAYS.index(text) if text in _CRON_DAYS else int(text)

    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step = part.partition("/")
        first, dash, last = span.partition("-")
        try:
            low, high = (0, 6) if span == "*" else (number(first), number(last) if dash
                                                    else 6 if step else number(first))
            every = int(step or 1)
        except ValueError:
            every = 0
        if every < 1 or not 0 <= low <= high <= 7:
            raise ValueError(f"bad day of week {part!r} (0-7 or sun-sat)")
        days.update(day % 7 for day in range(low, high + 1, every))
    return ",".join(_CRON_DAYS[day] for day in sorted(days))


def cron_trigger(expression: str, timezone):
    """An APScheduler CronTrigger from a 5-field crontab line read as cron reads it
    (CronTrigger.from_crontab would take day-of-week 1 for Tuesday). ValueError if bad."""
    from apscheduler.triggers.cron import CronTrigger

    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"wrong number of fields: got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    if day != "*" and weekday != "*":
        raise ValueError("it restricts both the day of the month and the day of the week: "
                         "cron runs a job when either matches, the worker only when both "
                         "do; restrict one (e.g. '0 8 1-7 * *' or '0 8 * * mon')")
    return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                       day_of_week=_cron_weekdays(weekday), timezone=timezone)


def _cron(value: str) -> str:
    try:
        trigger = cron_trigger(value, UTC)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid cron expression ({exc}); the form is "
                         "'minute hour day month weekday', e.g. '0 8 * * mon'") from None
    if trigger.get_next_fire_time(None, datetime(2026, 1, 1, tzinfo=UTC)) is None:
        raise ValueError(f"{value!r} never fires (e.g. the 31st of February)")
    return value


# one bare address, as SMTP's RCPT TO takes it (no display name, no list)
_ADDRESS = re.compile(r"[^@\s,;<>()\"']+@[^@\s,;<>()\"']+")


def _one_line(value: str) -> str:
    """Text that goes into an email header: a line break would end the header there."""
    # control characters (\n, \v, \x85 ...) and the line and paragraph separators
    # (U+2028, U+2029): every line break str.splitlines() knows; the email package refuses them
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in value):
        raise ValueError("must be one line (it goes into an email header)")
    return value


def _addresses(value: list[str]) -> list[str]:
    for address in value:
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"{address!r} is not one email address (one address per "
                             "list item, e.g. \"ada@example.org\")")
    return value


def _sender(value: str) -> str:
    _one_line(value)
    if not _ADDRESS.fullmatch(parseaddr(value)[1]):
        raise ValueError(f"{value!r} is not an email address (e.g. \"tracker@example.org\" "
                         "or \"NeuroAI tracker <tracker@example.org>\")")
    return value


def _host(value: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(value.strip()))  # "::1" has colons, but no port
    except ValueError:
        pass
    if not value.strip() or any(c.isspace() or c in "/:@" for c in value.strip()):
        raise ValueError(f"{value!r} is not a host name or address (e.g. \"smtp.example.org\"; "
                         "the port is [smtp] port)")
    return value.strip()


def _subject(value: str) -> str:
    _one_line(value)
    when = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    try:
        value.format(start=when, end=when)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"cannot be formatted ({exc}): use {{start}} and {{end}} with "
                         "strftime codes, e.g. {start:%d %b}") from None
    return value


def _unsubscribe(value: str) -> str:
    _one_line(value)
    parts = urlsplit(value)
    if value and not (parts.scheme == "mailto" and "@" in parts.path
                      or parts.scheme == "https" and parts.netloc):
        raise ValueError(f"expected a mailto: or https: URL, got {value!r}")
    return value


def _feed_name(value: str) -> str:
    if len(value) > 128:  # the store's column (PostgreSQL refuses longer ones)
        raise ValueError(f"at most 128 characters (got {len(value)})")
    return value


def _seed_papers(value: list[str]) -> list[str]:
    from tracker.errors import InputError
    from tracker.models import ARXIV_NEW_ID, ARXIV_OLD_ID, parse_item_id

    for seed in value:
        try:
            kind, key = parse_item_id(seed)
        except InputError:
            kind = key = None
        if kind != "paper" or not re.fullmatch(f"{ARXIV_NEW_ID}|{ARXIV_OLD_ID}", str(key)):
            raise ValueError(f"{seed!r} is not an arXiv id like '2210.08340' or "
                             "'math/0211159'")
    return value


def _unique_feed_names(value: list[FeedConfig]) -> list[FeedConfig]:
    names = [feed.name for feed in value]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"feed names must be unique; repeated: {', '.join(duplicates)}")
    for reserved in ("arxiv", "feeds"):  # `tracker fetch --source` names these
        if reserved in names:
            raise ValueError(f"{reserved!r} is reserved (`--source {reserved}`); pick another "
                             "feed name")
    return value


# an arXiv category code: cs.LG, q-bio.NC, physics.bio-ph, cond-mat.dis-nn, hep-th
_CATEGORY = re.compile(r"[a-z]+(-[a-z]+)?(\.[A-Za-z]+(-[a-z]+)?)?")


def _categories(value: list[str]) -> list[str]:
    for category in value:
        if not _CATEGORY.fullmatch(category):
            raise ValueError(f"{category!r} is not an arXiv category code like 'q-bio.NC' "
                             "(one per list item)")
    return value


def key(default=MISSING, *, factory=MISSING, check=None, **bounds):
    """A config key: its default (or a factory for lists and tables; neither = required),
    an optional check, and bounds: ge, gt, le (numbers) or min_length (strings)."""
    return field(default=default, default_factory=factory,
                 metadata={"check": check, "bounds": bounds})


# --- the sections. Built from TOML by from_dict(), which validates every key -------------

@dataclass(frozen=True)
class DatabaseConfig:
    url: str = key(DEFAULT_DATABASE_URL, check=_database_url)


@dataclass(frozen=True)
class ArxivConfig:
    enabled: bool = True
    categories: list[str] = key(check=_categories, factory=lambda: [
        "q-bio.NC", "cs.NE", "cs.LG", "cs.AI", "stat.ML", "cs.CV", "cs.CL", "eess.SP",
    ])
    query: str = ""
    api_url: str = key("https://export.arxiv.org/api/query", check=_http_url)
    delay_seconds: float = key(3.0, ge=0)
    page_size: int = key(200, ge=1, le=2000)
    lookback_days: int = key(7, ge=1, le=365)
    overlap_hours: int = key(48, ge=0, le=24 * 30)
    timeout_seconds: float = key(30.0, gt=0)
    max_retries: int = key(4, ge=0, le=20)


@dataclass(frozen=True)
class FeedConfig:
    name: str = key(min_length=1, check=_feed_name)
    url: str = key(check=_http_url)
    enabled: bool = True


@dataclass(frozen=True)
class FeedFetchConfig:
    timeout_seconds: float = key(20.0, gt=0)
    max_bytes: int = key(10_000_000, ge=1024)
    user_agent: str = "neuroai-tracker/0.1 (+https://github.com/neuroai-tracker)"


@dataclass(frozen=True)
class RelevanceConfig:
    threshold: float = key(0.5, ge=0, le=1)
    model_path: str = key("data/model.joblib", min_length=1)
    keywords: dict[str, float] = key(check=_keywords, factory=lambda: {
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
    })
    seed_papers: list[str] = key(factory=lambda: ["2210.08340", "2209.03718"],
                                 check=_seed_papers)
    min_relevant: int = key(50, ge=1)


@dataclass(frozen=True)
class ScheduleConfig:
    timezone: str = key("UTC", check=_time_zone)
    fetch: str = key("0 6 * * *", check=_cron)
    digest: str = key("0 8 * * mon", check=_cron)
    misfire_grace_seconds: int = key(6 * 3600, ge=1)
    lock_ttl_seconds: int = key(3 * 3600, ge=60)
    stop_grace_seconds: float = key(5.0, ge=0, le=3600)


@dataclass(frozen=True)
class DigestConfig:
    recipients: list[str] = key(factory=list, check=_addresses)
    sender: str = key("neuroai-tracker@localhost", check=_sender)
    subject: str = key("NeuroAI digest: {start:%d %b} to {end:%d %b %Y}", check=_subject)
    max_items: int = key(30, ge=1, le=1000)
    min_score: float = key(0.5, ge=0, le=1)
    send_empty: bool = True
    include_updates: bool = False
    list_id: str = key("NeuroAI tracker digest <digest.neuroai-tracker.local>",
                       check=_one_line)
    unsubscribe: str = key("", check=_unsubscribe)


@dataclass(frozen=True)
class SmtpConfig:
    host: str = key("localhost", check=_host)
    port: int = key(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str = ""
    timeout_seconds: float = key(30.0, gt=0)


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = key(factory=DatabaseConfig)
    arxiv: ArxivConfig = key(factory=ArxivConfig)
    feeds: list[FeedConfig] = key(check=_unique_feed_names, factory=lambda: [
        FeedConfig(name="xcorr", url="https://xcorr.net/feed/"),
        FeedConfig(name="the-transmitter", url="https://www.thetransmitter.org/feed/"),
        FeedConfig(name="colah", url="https://colah.github.io/rss.xml"),
        FeedConfig(name="lilian-weng", url="https://lilianweng.github.io/index.xml"),
    ])
    feed_fetch: FeedFetchConfig = key(factory=FeedFetchConfig)
    relevance: RelevanceConfig = key(factory=RelevanceConfig)
    schedule: ScheduleConfig = key(factory=ScheduleConfig)
    digest: DigestConfig = key(factory=DigestConfig)
    smtp: SmtpConfig = key(factory=SmtpConfig)

    # Where the config came from; not a TOML key (set by from_dict).
    _source = "<defaults>"

    @property
    def source(self) -> str:
        return self._source

    @property
    def database_url(self) -> str:
        """The effective database URL: $TRACKER_DATABASE_URL wins over the file, and is
        checked as the file's value is (ConfigError, naming the variable, not its value)."""
        from_env = os.environ.get(ENV_DATABASE_URL)
        if not from_env:
            return self.database.url
        try:
            return _database_url(from_env)
        except ValueError as exc:
            raise ConfigError(f"${ENV_DATABASE_URL}: {exc}",
                              hint="e.g. postgresql+psycopg://user:$DB_PASSWORD@host/db") from None

    @property
    def smtp_password(self) -> str | None:
        return os.environ.get(ENV_SMTP_PASSWORD) or None

    def to_dict(self) -> dict:
        """Every key and value, as plain dicts and lists."""
        return asdict(self)

    def relevance_hash(self) -> str:
        """Hash of everything that changes scores; stored with every score."""
        settings = asdict(self.relevance)
        del settings["min_relevant"]  # a condition on training, not on how items score
        payload = json.dumps(settings, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    def masked(self) -> dict:
        """The effective config as a dict, safe to print: no password anywhere."""
        data = self.to_dict()
        data["database"]["url"] = mask_url(self.database_url)
        data["smtp"]["password"] = "***" if self.smtp_password else "(unset)"
        return data


def previous_fire_time(cron: str, timezone: str, now: datetime) -> datetime | None:
    """The latest time at or before `now` when `cron` fired (None if not within a year).
    Pure; used to align digest periods to the schedule. As cron does, a job at a set hour
    runs once on the night clocks go back: the second 02:30 is no new fire time (it would
    start a one-hour digest period, sent as a second email), while an hourly job's repeated
    hour is a real hour."""
    trigger = cron_trigger(cron, ZoneInfo(timezone))
    set_hour = not cron.split()[1].startswith("*")
    for window in (timedelta(days=1), timedelta(days=8), timedelta(days=32), timedelta(days=367)):
        last = previous = latest_wall = None
        # a day before the window: a wall time seen on the night clocks went back must be
        # known when the window opens between the two 02:30s
        probe = now - window - timedelta(days=1)
        # In UTC throughout: local wall-clock arithmetic (and comparison: two datetimes of one
        # zone compare by wall time) cannot tell the two 02:30s of a DST fall-back night
        # apart, and the search went back an hour, forever.
        while (fire := trigger.get_next_fire_time(None, probe)) is not None:
            at = fire.astimezone(UTC)
            if at > now or (previous is not None and at <= previous):
                break
            wall = fire.replace(tzinfo=None)
            # a wall time not after one already passed: the clock went back (02:00 and 02:30
            # of "0,30 2 * * *" come again)
            if not (set_hour and latest_wall is not None and wall <= latest_wall):
                last = at
            latest_wall = wall if latest_wall is None else max(latest_wall, wall)
            previous, probe = at, at + timedelta(microseconds=1)
        if last is not None:
            return last
    return None


def mask_url(url: str) -> str:
    """Replace the password in a URL with ***: after `user:` up to the last '@' (so a password
    holding '@', '#', '/' or '?' is masked whole), and password= query parameters."""
    return _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", url, count=1))


_PASSWORD = re.compile(r"^([\w+]+://[^:/@]*:).*@")
_QUERY_PASSWORD = re.compile(r"([?&](?:ssl)?password=)[^&]*", re.I)


def commented_defaults() -> Path:
    """The commented default config: config/tracker.toml in a source checkout, or the copy
    packed into the wheel (pyproject's force-include)."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "config" / "tracker.toml",
                      package / "_default_config" / "tracker.toml"):
        if candidate.is_file():
            return candidate
    raise ConfigError("the commented default config is missing from this installation")


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
                          hint="check the path, or write a commented one with "
                               f"`tracker config init {path}`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return from_dict(raw, source=str(path))


def from_dict(raw: dict, *, source: str = "<dict>") -> Config:
    """A validated Config from TOML-shaped data; ConfigError lists every bad key."""
    errors: list[str] = []
    config = _build(Config, raw, (), errors)
    if not errors and config.arxiv.enabled and not (config.arxiv.categories
                                                    or config.arxiv.query.strip()):
        _error(errors, ("arxiv", "categories"), "empty, and [arxiv] query is empty too: "
               "the fetch would page through all of arXiv; name categories (e.g. "
               "[\"q-bio.NC\"]), set a query, or set [arxiv] enabled = false")
    if errors:
        raise ConfigError("\n".join(f"{source}: {error}" for error in errors))
    object.__setattr__(config, "_source", source)
    return config


_BAD = object()  # a value that failed validation (its error is already recorded)
_TYPE_NAMES = {bool: "a boolean (true or false)", int: "an integer", float: "a number",
               str: "a string", list: "an array", dict: "a table"}


def _error(errors: list[str], loc: tuple, what: str, value=_BAD) -> None:
    path = ".".join(str(part) for part in loc) or "(top level)"
    got = f" (got {value!r})" if value is not _BAD and not isinstance(value, dict | list) else ""
    errors.append(f"key '{path}': {what}{got}")


def _unknown_key_hint(name: str, known) -> str:
    if "password" in name.lower() or "secret" in name.lower():
        return (f"; secrets are never read from the file: set ${ENV_SMTP_PASSWORD} (SMTP) "
                "or put the password in $TRACKER_DATABASE_URL")
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6) or \
        [key for key in known if key.startswith(f"{name}_")]  # delay: delay_seconds
    return f" (did you mean '{close[0]}'?)" if close else ""


def _build(cls: type, raw, loc: tuple, errors: list[str]):
    """An instance of the dataclass `cls` from a TOML table, or _BAD."""
    if not isinstance(raw, dict):
        _error(errors, loc, "expected a table of keys", raw)
        return _BAD
    before = len(errors)
    known = {f.name: f for f in fields(cls)}
    for name in raw:
        if name not in known:
            _error(errors, (*loc, name), "unknown key" + _unknown_key_hint(name, known))
    hints = _hints(cls)
    values = {}
    for name, spec in known.items():
        if name not in raw:
            if spec.default is MISSING and spec.default_factory is MISSING:
                _error(errors, (*loc, name), "required key is missing")
            continue
        value = _value(hints[name], raw[name], (*loc, name), errors)
        if value is not _BAD:
            value = _checked(spec, value, (*loc, name), errors)
        values[name] = value
    return cls(**values) if len(errors) == before else _BAD


@cache
def _hints(cls: type) -> dict:
    return get_type_hints(cls)


def _value(tp, value, loc: tuple, errors: list[str]):
    """`value` checked against the annotation `tp` (ints widen to floats), or _BAD."""
    origin, args = get_origin(tp), get_args(tp)
    if is_dataclass(tp):
        return _build(tp, value, loc, errors)
    if origin is Literal:
        if value in args and isinstance(value, str):
            return value
        choices = ", ".join(repr(a) for a in args[:-1]) + f" or {args[-1]!r}"
        _error(errors, loc, f"expected {choices}", value)
        return _BAD
    base = origin or tp
    ok = isinstance(value, base) and not (isinstance(value, bool) and base is not bool)
    if base is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if base is float and isinstance(value, float) and not math.isfinite(value):
        _error(errors, loc, "expected a finite number", value)  # TOML allows nan and inf
        return _BAD
    if not ok:
        _error(errors, loc, f"expected {_TYPE_NAMES[base]}", value)
        return _BAD
    if base is list:
        items = [_value(args[0], item, (*loc, i), errors) for i, item in enumerate(value)]
        return _BAD if _BAD in items else items
    if base is dict:
        table = {k: _value(args[1], v, (*loc, k), errors) for k, v in value.items()}
        return _BAD if _BAD in table.values() else table
    return value


def _checked(spec, value, loc: tuple, errors: list[str]):
    bounds = spec.metadata.get("bounds", {})
    for bound, fails, words in (("ge", lambda v, b: v < b, "greater than or equal to"),
                                ("gt", lambda v, b: v <= b, "greater than"),
                                ("le", lambda v, b: v > b, "less than or equal to")):
        if bound in bounds and fails(value, bounds[bound]):
            _error(errors, loc, f"should be {words} {bounds[bound]}", value)
            return _BAD
    if "min_length" in bounds and len(value) < bounds["min_length"]:
        _error(errors, loc, f"should have at least {bounds['min_length']} character(s)", value)
        return _BAD
    check = spec.metadata.get("check")
    # A default is valid (a test checks each): not re-checking one that the file repeats
    # keeps the committed config, which spells out every default, from importing
    # APScheduler (cron) on every command.
    if check is not None and value != spec.default:
        try:
            return check(value)
        except ValueError as exc:  # the check's message names the value where it helps
            _error(errors, loc, str(exc))
            return _BAD
    return value
