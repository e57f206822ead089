"""The search query language: words, "phrases", prefix terms (spik*), AND / OR / NOT and
parentheses. Parsed here into a small AST, then compiled to an SQLite FTS5 MATCH string or
a PostgreSQL tsquery string, so both backends get the same meaning.

Safety: a term is reduced to runs of letters and digits before it is compiled, so no
character of the user's text can act as FTS5 or tsquery syntax; the compiled string is then
passed to the database as a bound parameter, never spliced into SQL.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from tracker.errors import InputError

MAX_CHARS = 1000
MAX_TERMS = 64
MAX_DEPTH = 16
MIN_PREFIX = 3  # shorter prefixes expand to too many index terms
OPERATORS = ("AND", "OR", "NOT")  # upper case only, as in FTS5; lower-case "and" is a word
FIELD_WEIGHTS = "ABC"  # of title, authors and text in PostgreSQL's vectors (migration 0006)

_TOKEN = re.compile(r'\s*(?:(")|(\()|(\))|([^\s"()]+))')
HINT = 'e.g. spiking AND (dendrit* OR "predictive coding") NOT retina'

# PostgreSQL's 'english' stop words (from Snowball). PostgreSQL does not index them, FTS5
# does; dropping them from queries (outside phrases) on both backends keeps results equal.
STOPWORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
she her hers herself it its itself they them their theirs themselves what which who whom
this that these those am is are was were be been being have has had having do does did
doing a an the and but if or because as until while of at by for with about against
between into through during before after above below to from up down in out on off over
under again further then once here there when where why how all any both each few more
most other some such no nor not only own same so than too very s t can will just don
should now""".split())
STOP = object()  # a stop word in the token stream: a term that matches nothing


@dataclass(frozen=True)
class Term:
    """One word (or several pieces of one, e.g. spike-timing) or a quoted phrase."""

    words: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class And:
    parts: tuple


@dataclass(frozen=True)
class Or:
    parts: tuple


@dataclass(frozen=True)
class Not:
    part: object


def _error(message: str) -> InputError:
    return InputError(f"invalid search query: {message}", hint=HINT)


def _tokens(text: str) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    pos = 0
    while (match := _TOKEN.match(text, pos)) is not None:  # None: only blanks are left
        pos = match.end()
        if match.group(1):  # a phrase runs to the next double quote
            end = text.find('"', pos)
            if end < 0:
                raise _error("a double quote is not closed")
            prefix = text.startswith("*", end + 1)
            out.append(("term", _term(text[pos:end], prefix, phrase=True)))
            pos = end + 1 + prefix
        elif match.group(2) or match.group(3):
            out.append((match.group(2) or match.group(3), None))
        elif match.group(4) in OPERATORS:
            out.append((match.group(4), None))
        else:
            word = match.group(4)
            term = _term(word.rstrip("*"), word.endswith("*"), phrase=False)
            if term is not None:  # pure punctuation (e.g. ';) indexes nothing: skipped
                out.append(("term", term))
    return out


def words_of(text: str) -> list[str]:
    """The words both indexes read in `text`, in lower case: runs of letters, combining
    marks, decimal digits and letter numbers (the word characters of FTS5 as migration 0008
    sets it up, and of PostgreSQL's parser). Anything else, "²" or "½" included, separates
    words."""
    if text.isascii():
        return _ASCII_WORD.findall(text.lower())
    # one form of each accented letter, as the sources store text ("e" + U+0301 is "é")
    text = unicodedata.normalize("NFC", text)
    return "".join(_lower(c) if _indexed(c) else " " for c in text).split()


_ASCII_WORD = re.compile(r"[a-z0-9]+")


def _indexed(char: str) -> bool:
    if char.isascii():
        return char.isalnum()
    category = unicodedata.category(char)
    return category[0] in "LM" or category in ("Nd", "Nl")


def _lower(char: str) -> str:
    """Lower case, unless that is not one letter: Python lowers "İ" to "i" plus a combining
    dot, which neither index holds (FTS5 keeps "İ", PostgreSQL lowers it to "i")."""
    low = char.lower()
    return low if len(low) == 1 else char


def _term(text: str, prefix: bool, *, phrase: bool) -> Term | None:
    words = tuple(words_of(text))
    if not words:
        if phrase:
            raise _error('a "phrase" holds no words')
        if prefix:
            raise _error(f"a prefix term needs at least {MIN_PREFIX} letters before *")
        return None
    if prefix and len(words[-1]) < MIN_PREFIX:
        raise _error(f"a prefix term needs at least {MIN_PREFIX} letters before *")
    if all(word in STOPWORDS for word in words):
        return STOP
    return Term(words, prefix)


class _Parser:
    def __init__(self, tokens):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self):
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse_or(self):
        parts = [self.parse_and()]
        while self.peek() == "OR":
            self.take()
            parts.append(self.parse_and())
        return _join(Or, parts)

    def parse_and(self):
        parts = [self.parse_unary()]
        while self.peek() not in (None, "OR", ")"):
            if self.peek() == "AND":
                self.take()
            parts.append(self.parse_unary())
        return _join(And, parts)

    def parse_unary(self):
        kind = self.peek()
        if kind == "NOT":
            self.take()
            part = self.parse_unary()
            return None if part is None else Not(part)
        if kind == "term":
            term = self.take()[1]
            return None if term is STOP else term
        if kind == "(":
            self.take()
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise _error(f"parentheses nested deeper than {MAX_DEPTH} levels")
            if self.peek() == ")":
                raise _error("empty parentheses")
            node = self.parse_or()
            if self.peek() != ")":
                raise _error("a parenthesis is not closed")
            self.take()
            self.depth -= 1
            return node
        if kind is None:
            raise _error("the query ends where a term was expected (after AND, OR or NOT?)")
        if kind == ")":
            raise _error("unexpected ')'")
        raise _error(f"{kind} must stand between two terms")


def _join(kind, parts: list):
    """And/Or of the parts left after stop words (None) dropped out; None if none are."""
    parts = [part for part in parts if part is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else kind(tuple(parts))


def parse(text: str | None):
    """The AST of a query, or None for an empty query (which matches everything)."""
    text = (text or "").strip()
    if not text:
        return None
    if len(text) > MAX_CHARS:
        raise _error(f"too long ({len(text)} characters; at most {MAX_CHARS})")
    tokens = _tokens(text)
    if sum(kind == "term" for kind, _ in tokens) > MAX_TERMS:
        raise _error(f"too many terms (at most {MAX_TERMS})")
    if not tokens:
        raise _error("no searchable words (only punctuation or symbols)")
    parser = _Parser(tokens)
    node = parser.parse_or()
    if parser.peek() is not None:
        raise _error("unexpected ')'")
    if node is None:
        raise _error("only very common words (the, of, and, ...), which are not indexed")
    _check_negations(node)
    return node


def _check_negations(node) -> None:
    """NOT only narrows a positive match ("a NOT b"): FTS5 cannot evaluate "everything
    except b", and refusing it on both backends keeps their meaning identical."""
    if isinstance(node, Not):
        raise _error("NOT must follow a positive term, as in: spiking NOT retina")
    if isinstance(node, Or):
        for part in node.parts:
            _check_negations(part)
    if isinstance(node, And):
        positives = [part for part in node.parts if not isinstance(part, Not)]
        if not positives:
            raise _error("NOT must follow a positive term, as in: spiking NOT retina")
        for part in positives:
            _check_negations(part)
        for part in node.parts:
            if isinstance(part, Not):
                _check_negations(part.part)


# --- compilers -------------------------------------------------------------------------

def to_fts5(node, column: str | None = None) -> str:
    """FTS5 MATCH syntax; `column` restricts every term to one indexed column."""
    if isinstance(node, Term):
        quoted = '"' + " ".join(node.words).replace('"', '""') + '"' + ("*" if node.prefix else "")
        return f"{{{column}}} : {quoted}" if column else quoted
    if isinstance(node, Or):
        return "(" + " OR ".join(to_fts5(part, column) for part in node.parts) + ")"
    positives = [part for part in node.parts if not isinstance(part, Not)]
    text = "(" + " AND ".join(to_fts5(part, column) for part in positives) + ")"
    for part in node.parts:
        if isinstance(part, Not):
            text = f"({text} NOT {to_fts5(part.part, column)})"
    return text


def stop_word_phrase(node) -> bool:
    """A phrase of several words with a stop word in it. PostgreSQL's tsquery drops such a
    word (an inner one leaves a gap that any word fills), so "in-context" would match every
    "context" and "coding of cortex" "coding in cortex": the PostgreSQL search tests these
    phrases on the text as well."""
    return isinstance(node, Term) and len(node.words) > 1 and any(
        word in STOPWORDS for word in node.words)


def has_stop_word_phrase(node) -> bool:
    return _has(node, stop_word_phrase)


def has_phrase(node) -> bool:
    return _has(node, lambda term: len(term.words) > 1)


def _has(node, test) -> bool:
    if isinstance(node, Term):
        return test(node)
    if isinstance(node, Not):
        return _has(node.part, test)
    return isinstance(node, And | Or) and any(_has(p, test) for p in node.parts)


def to_tsquery(node, weight: str = "", *, loose: bool = False) -> str:
    """tsquery syntax for to_tsquery(config, ...); `weight` (A-D) restricts every term.
    loose=True matches a superset, cheaper to test and rank: its phrases (outside a NOT)
    may run from one field into the next."""
    if isinstance(node, Term):
        if len(node.words) > 1 and not weight and not loose:
            # The vector joins the fields end to end, each with its own weight (A title,
            # B authors, C text: migration 0006); a phrase stays within one, as in FTS5.
            return "(" + " | ".join(to_tsquery(node, w) for w in FIELD_WEIGHTS) + ")"
        lexemes = [f"'{word}'" + (":" + weight if weight else "") for word in node.words]
        if node.prefix:
            lexemes[-1] = f"'{node.words[-1]}':*{weight}"
        return "(" + " <-> ".join(lexemes) + ")"
    if isinstance(node, Not):
        return "!" + to_tsquery(node.part, weight)  # the exact part: its negation is looser
    joiner = " | " if isinstance(node, Or) else " & "
    return "(" + joiner.join(to_tsquery(part, weight, loose=loose)
                             for part in node.parts) + ")"


def author_words(text: str) -> tuple[object, tuple[str, ...]]:
    """--author: every word is the start of a word of an author's name. Returns (the words
    the full-text index can test, as prefix terms: an And, or None; the words it cannot:
    initials and other words shorter than MIN_PREFIX, and stop words such as the surnames
    He and An, which PostgreSQL does not index and FTS5 would expand too far)."""
    words = words_of(text or "")[:MAX_TERMS]
    indexed = [Term((w,), prefix=True) for w in words
               if len(w) >= MIN_PREFIX and w not in STOPWORDS]
    rest = tuple(dict.fromkeys(w for w in words if len(w) < MIN_PREFIX or w in STOPWORDS))
    node = None if not indexed else indexed[0] if len(indexed) == 1 else And(tuple(indexed))
    return node, rest

