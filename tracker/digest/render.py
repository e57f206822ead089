"""Render a Digest as HTML and plain text (Jinja2; the HTML template is autoescaped).

Feed content never reaches the email as markup: posts reach it as the text ingest stored
(sources/feeds.plain_text), which the templates escape; links are kept only for http(s) and
mailto URLs, so `javascript:` and friends cannot get in.

The HTML part is kept under MAX_HTML_BYTES (Gmail clips messages beyond ~102 KB): when a week
is too big the abstracts get shorter, then go, then the least relevant entries are left out
(the email says how many, and they are not recorded as sent).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from tracker.digest.build import Digest, entry_count, excerpt, keeping, short_authors, trimmed
from tracker.models import safe_url

MAX_HTML_BYTES = 100_000
ABSTRACT_LEVELS = (320, 160, 0)  # characters of abstract per item, tried in turn
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class Rendered:
    digest: Digest  # what the email shows (possibly trimmed to fit)
    html: str
    text: str

    @property
    def html_bytes(self) -> int:
        return wire_size(self.html)


def wire_size(page: str) -> int:
    """Bytes of the HTML part's body as it travels, the size clients measure: encoded as
    send.build_message encodes it (quoted-printable or base64 once there is non-ASCII
    text, which adds up to a third), with CRLF line ends."""
    from email.message import EmailMessage

    part = EmailMessage()
    part.set_content(page, subtype="html", charset="utf-8")
    body = part.get_payload()
    return len(body) + body.count("\n")


def score_text(score: float | None) -> str:
    # unscored items are candidates only by the user's label (scoring failed for them and
    # `tracker rescore` has not run yet)
    return "labelled relevant, not scored yet" if score is None else f"score {score:.2f}"


def _indent_wrap(text: str) -> str:
    return textwrap.fill(text, width=76, initial_indent="  ", subsequent_indent="  ")


@cache
def _environment():
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        trim_blocks=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined,
    )
    env.filters.update(safe_url=safe_url, authors=short_authors, excerpt=excerpt,
                       indent_wrap=_indent_wrap, score=score_text,
                       oneline=lambda s: " ".join(str(s).split()))
    return env


def _when(moment: datetime, timezone: str) -> str:
    local = moment.astimezone(ZoneInfo(timezone))
    return local.strftime("%a %d %b %Y %H:%M ") + (local.tzname() or timezone)


def _render_one(name: str, digest: Digest, context: dict, abstract_chars: int) -> str:
    template = _environment().get_template(name)
    return template.render(d=digest, sent=len(digest.items), abstract_chars=abstract_chars,
                           **context)


def render(digest: Digest, *, subject: str, timezone: str = "UTC", unsubscribe: str = "",
           max_html_bytes: int = MAX_HTML_BYTES) -> Rendered:
    """Both parts from the same data; the HTML part fits in max_html_bytes."""
    zone = ZoneInfo(timezone)
    context = {"subject": subject, "unsubscribe": unsubscribe,
               "start": _when(digest.start, timezone), "end": _when(digest.end, timezone),
               # a post's date, as the day it was where the header's times are read
               "day": lambda moment: moment.astimezone(zone).strftime("%d %b %Y")}

    def attempt(candidate: Digest, chars: int) -> Rendered | None:
        page = _render_one("digest.html", candidate, context, chars)
        if wire_size(page) > max_html_bytes:
            return None
        return Rendered(candidate, page, _render_one("digest.txt", candidate, context, chars))

    def with_abstracts(candidate: Digest) -> Rendered | None:
        """The longest abstracts that fit, if any level does."""
        return next(filter(None, (attempt(candidate, chars) for chars in ABSTRACT_LEVELS)),
                    None)

    if done := with_abstracts(digest):
        return done
    # Still too big without abstracts. First leave out any entry too big to fit even alone
    # (a feed's link of 100,000 characters, say): keeping the best as a prefix would
    # otherwise keep nothing. Then keep as many of the most relevant entries as fit.
    entries = [entry for section in digest.sections for entry in section.entries]
    fitting = keeping(digest, {id(entry) for entry in entries
                               if attempt(keeping(digest, {id(entry)}), 0)})
    # without those, abstracts may fit again
    if entry_count(fitting) < entry_count(digest) and (done := with_abstracts(fitting)):
        return done
    digest = fitting
    low, high, best = 0, entry_count(digest), None
    while low <= high:
        middle = (low + high) // 2
        done = attempt(trimmed(digest, middle), 0)
        if done:
            best, low = done, middle + 1
        else:
            high = middle - 1
    if best is None:
        raise ValueError(f"an empty digest does not fit in {max_html_bytes} bytes")
    return best
