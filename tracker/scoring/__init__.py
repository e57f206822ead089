"""Relevance scoring. The text normalisation lives here, free of numpy, because the config
check applies it to keyword phrases on every command's start-up."""

import re
import unicodedata

# Bytes: a-z and 0-9 stay, everything else (punctuation, hyphens, the '?' that stands for
# any non-ASCII character after encoding) becomes a space.
_ALNUM = b"abcdefghijklmnopqrstuvwxyz0123456789"
_TABLE = bytes(c if c in _ALNUM else 32 for c in range(256))


# The accents NFKD splits off Latin letters
_COMBINING = re.compile("[\u0300-\u036f]")


def _ascii(text: str) -> bytes:
    # An accented letter reads as its base letter ("Schrödinger" as "schrodinger", not
    # "schr dinger"); other non-ASCII characters become spaces. bytes.lower() is a plain
    # ASCII loop; str.lower() on non-ASCII text is 5x slower.
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return text.encode("ascii", "replace").lower()


def normalize(text: str) -> str:
    """Lower case; anything but a-z and 0-9 to single spaces; padded with one space each
    side (also applied to phrases)."""
    return " " + " ".join(_ascii(text).translate(_TABLE).decode().split()) + " "
