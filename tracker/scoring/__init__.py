"""Relevance scoring. The text normalisation lives here, free of numpy, because the config
check applies it to keyword phrases on every command's start-up."""

# Bytes: a-z and 0-9 stay, everything else (punctuation, hyphens, the '?' that stands for
# any non-ASCII character after encoding) becomes a space.
_ALNUM = b"abcdefghijklmnopqrstuvwxyz0123456789"
_TABLE = bytes(c if c in _ALNUM else 32 for c in range(256))


def _ascii(text: str) -> bytes:
    # bytes.lower() is a plain ASCII loop; str.lower() on non-ASCII text is 5x slower, and
    # non-ASCII letters become spaces either way.
    return text.encode("ascii", "replace").lower()


def normalize(text: str) -> str:
    """Lower case; anything but a-z and 0-9 to single spaces; padded with one space each
    side (also applied to phrases)."""
    return " " + " ".join(_ascii(text).translate(_TABLE).decode().split()) + " "
