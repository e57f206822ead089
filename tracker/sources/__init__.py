"""Sources: arXiv (arxiv.py) and blog feeds (feeds.py). Both speak HTTP through requests."""


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
