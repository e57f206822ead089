"""Sources: arXiv (arxiv.py) and blog feeds (feeds.py). Both speak HTTP through requests."""

import time
import unicodedata

import requests
import urllib3


def composed(text: str) -> str:
    """Each accented letter in one form ("e" + U+0301 is "é"), as search reads queries."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


class BodyTooLarge(Exception):
    """A response body over the cap given to read_body."""


def read_body(resp, timeout: float, max_bytes: int | None = None) -> bytes:
    """The body of a streamed response (requests.get(..., stream=True)) within `timeout`
    seconds in all: requests' own timeout bounds each socket read, so a server that
    trickles the body out could hold a fetch for ever. read1 returns what one socket read
    brings, so the deadline is checked as bytes come (iter_content would wait for a whole
    chunk first). requests.Timeout past the deadline; BodyTooLarge over max_bytes."""
    deadline = time.monotonic() + timeout
    chunks, size = [], 0
    try:
        while chunk := resp.raw.read1(64 * 1024, decode_content=True):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise BodyTooLarge(f"larger than {max_bytes} bytes")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise requests.Timeout("the body took longer than the timeout")
    except urllib3.exceptions.ReadTimeoutError:
        raise requests.Timeout() from None
    except urllib3.exceptions.HTTPError as exc:  # a cut connection, a broken gzip stream
        raise requests.ConnectionError(f"{type(exc).__name__}: {exc}") from None
    return b"".join(chunks)


def describe_request_error(exc: Exception) -> str:
    """One short reason for a failed request, e.g. "Failed to resolve 'xcorr.net' (...)",
    instead of requests' nested pool/connection reprs."""
    reason = exc
    while True:  # requests -> urllib3 MaxRetryError -> the underlying cause
        inner = getattr(reason, "reason", None) or (
            reason.args[0] if reason.args and isinstance(reason.args[0], Exception) else None)
        if inner is None or inner is reason:
            break
        reason = inner
    text = str(reason)
    # urllib3 prefixes "HTTPSConnection(host=..., port=...): "; the rest is the reason.
    if text.startswith(("HTTPConnection(", "HTTPSConnection(")) and "): " in text:
        text = text.split("): ", 1)[1]
    return text or type(reason).__name__
