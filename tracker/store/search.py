"""All SQL of `tracker search`: full-text match (FTS5 on SQLite, tsvector on PostgreSQL, both
made by migration 0002), filters, sorting and paging over papers and posts together.

Each item table is searched by its own SELECT that is already sorted and cut to
offset + limit rows; the two are merged with UNION ALL and cut again, so a page costs two
small top-N queries however large the store is. The page's full rows are then loaded by
primary key. User text only ever reaches the database as bound parameters.

Every cut orders by the same keys as the merged page, down to a unique tie-breaker (the
rowid on SQLite, which the full-text and facet tables share; the id on PostgreSQL): a cut
that kept an arbitrary few of the rows tied at its edge would make page k+1 skip or repeat
rows of page k.

Core only (no ORM import, so the command starts fast): each function takes a Connection,
or a Session, which runs the same statements.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    JSON,
    Float,
    Integer,
    String,
    Table,
    and_,
    case,
    cast,
    column,
    exists,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    table,
    text,
    true,
    type_coerce,
    union_all,
)

from tracker.errors import NotFoundError
from tracker.models import parse_item_id
from tracker.store import chunks
from tracker.store import search_query as q
from tracker.store.schema import (
    Timestamp,
    digest_items,
    digests,
    labels,
    paper_versions,
    papers,
    post_refs,
    posts,
    scores,
)

SORTS = ("relevance", "score", "date")
KINDS = ("paper", "post")
LABELS = ("relevant", "irrelevant")
ARXIV_ABS = "https://arxiv.org/abs/"


@dataclass(frozen=True)
class Filters:
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    min_score: float | None = None
    categories: tuple[str, ...] = ()  # any of them (papers only)
    author: str | None = None  # every word starts a word of an author's name
    kind: str | None = None
    feed: str | None = None  # posts only
    labelled: str | None = None


@dataclass(frozen=True)
class _Side:
    """How one item table is searched."""

    kind: str
    table: Table
    fts: str  # SQLite FTS5 table (rowid = the table's `rowid_col`)
    rowid_col: str
    author_col: str
    # bm25 column weights (title, text, author): the same as the `rank` that migration 0002
    # configures (a test checks); the query calls bm25() with them (see _match_sqlite)
    weights: tuple[float, ...] = (4.0, 1.0, 2.0)

    def date(self):  # posts may lack a date; papers always have one (and an index on it)
        if self.kind == "paper":
            return self.table.c.published
        return func.coalesce(self.table.c.published, self.table.c.first_seen_at)


PAPERS = _Side("paper", papers, "papers_fts", "rowid", "authors")
# SQLite: migration 0003's narrow copy of the papers columns that filters test, keyed by
# the FTS rowid; a text match is filtered here rather than by a seek into wide papers rows.
PAPER_FACETS = table("papers_facets", column("rowid", Integer), column("published", Timestamp),
                     column("score", Float), column("categories", JSON))
POSTS = _Side("post", posts, "posts_fts", "id", "author")


def _dialect(conn) -> str:
    return (conn.dialect if hasattr(conn, "dialect") else conn.get_bind().dialect).name


def search(conn, text: str | None, filters: Filters, *, sort: str = "relevance",
           limit: int = 50, offset: int = 0) -> list[dict]:
    """One page of matching items, best first, as item dicts (see item_dict)."""
    node = q.parse(text)
    author, initials = q.author_words(filters.author or "")
    if filters.author and author is None and not initials:
        return []  # an author filter of punctuation only
    pg = _dialect(conn) == "postgresql"
    sides = []
    if filters.kind in (None, "paper") and filters.feed is None:  # papers have no feed
        sides.append(PAPERS)
    if filters.kind in (None, "post") and not filters.categories:
        sides.append(POSTS)
    if not sides:
        return []
    ranked = node is not None and sort == "relevance"
    halves = _Halves.of(conn, limit + offset) if ranked and not pg and PAPERS in sides else None
    arms = [_arm(side, node, author, filters, pg, sort, ranked, limit + offset, halves)
            for side in sides]
    page = (arms[0] if len(arms) == 1 else union_all(*arms)).subquery()
    stmt = select(page.c.kind, page.c.paper_id, page.c.post_id)
    stmt = stmt.order_by(*_order(page.c, sort, ranked, pg), page.c.kind, page.c.tie,
                         page.c.paper_id, page.c.post_id).limit(limit).offset(offset)
    keys = conn.execute(stmt).all()
    return load_items(conn, [(k.kind, k.paper_id or k.post_id) for k in keys])


def _arm(side: _Side, node, author, filters: Filters, pg: bool, sort: str, ranked: bool,
         top: int, halves: _Halves | None = None):
    t = side.table
    paper_id = t.c.id if side.kind == "paper" else cast(null(), String)
    post_id = t.c.id if side.kind == "post" else cast(null(), Integer)
    # the tie-breaker: see the module docstring (PostgreSQL's is paper_id or post_id)
    rowid = literal_column(f"{t.name}.{side.rowid_col}")
    tie = cast(null(), Integer) if pg else rowid
    cols = [literal(side.kind, String).label("kind"), paper_id.label("paper_id"),
            post_id.label("post_id"), t.c.score.label("score"), side.date().label("date"),
            tie.label("tie")]
    stmt = select(*cols).select_from(t)
    rank = cast(null(), Float)
    own, other = _filters(side, filters, pg, by_date=sort != "score")
    where = own + other
    if (node is not None or author is not None) and pg:
        stmt, rank = _match_postgres(stmt, side, node, author)
    elif node is not None or author is not None:
        # Papers: filters, and the date or score to sort by, are read from 0003's narrow
        # copy for every match, not from the wide papers rows (relevance without filters
        # needs neither). Not with --labelled: that test needs the papers row, and so few
        # papers are labelled that it is best made first.
        facets = side.kind == "paper" and not other and bool(own or not ranked)
        inner = []
        if facets:
            inner, where = _filters(side, filters, pg, facets=True)[0], []
        cut = top if (ranked or facets) and not where else None
        stmt, rank = _match_sqlite(stmt, side, node, author, cut, ranked, sort, facets, inner,
                                   halves if side is PAPERS else None)
    if not ranked:  # sorted by score or date: no rank to compute
        rank = cast(null(), Float)
    stmt = stmt.add_columns(rank.label("rank")).where(*where)
    # (SQLite reads the date or score index in order and sorts only rows tied on it)
    keys = _order(stmt.selected_columns, sort, ranked, pg)
    stmt = stmt.order_by(*keys, t.c.id if pg else rowid).limit(top)
    return select(stmt.subquery())  # sorted and cut inside; SQLite needs the wrapping


def _match_sqlite(stmt, side: _Side, node, author, cut: int | None, ranked: bool, sort: str,
                  facets: bool, inner: list, halves: _Halves | None = None):
    parts = [q.to_fts5(node)] if node is not None else []
    if author is not None:
        parts.append(q.to_fts5(author, column=side.author_col))
    fts = table(side.fts, column("rowid"))
    match = literal_column(side.fts).op("MATCH")(literal(" AND ".join(parts), String))
    # bm25() rather than FTS5's `rank` column: the same function and weights, but FTS5
    # answers ORDER BY rank by sorting every match itself, and computes `rank` more slowly;
    # bm25() goes through SQLite's top-N sort (about 1.5-2x faster on common terms).
    rank = func.bm25(literal_column(side.fts), *(literal_column(repr(w)) for w in side.weights))
    hits = select(fts.c.rowid, *([rank.label("bm25")] if ranked else [])).where(match)
    f = PAPER_FACETS.c
    if facets:  # papers_facets has the FTS rowid; filters are tested before ranking
        hits = hits.join(PAPER_FACETS, f.rowid == fts.c.rowid).where(*inner)
    if cut is not None:  # nothing else to filter on: sort and cut here, join only the page
        if ranked:
            keys = [literal_column("bm25")]
        else:
            keys = [f.score.desc(), f.published.desc()] if sort == "score" else \
                [f.published.desc()]
        hits = hits.order_by(*keys, fts.c.rowid).limit(cut)
    if ranked and cut is not None and halves is not None:
        hits = halves.top(hits, fts.c.rowid, cut)
    else:
        hits = hits.subquery()
    stmt = stmt.join(hits, hits.c.rowid == literal_column(f"{side.table.name}.{side.rowid_col}"))
    return stmt, hits.c.bm25 if ranked else None  # lower is better


# A ranked text query on a store of at least this many papers is run as two halves at once
# (see _Halves); fewer, and even a common word's matches rank in a few milliseconds.
HALVES_MIN_PAPERS = 100_000
HALVES_MAX_ROWS = 500  # the top rows come back as a UNION ALL of that many SELECTs at most


class _Halves:
    """On SQLite, ranking the matches of a common word is most of a search's time: bm25()
    reads every match, about 1 us each (500 ms for the 470,000 papers of 1,000,000 that
    hold "dendrite"). With two CPUs, the papers' two rowid halves are ranked at once, one on
    this connection and one on another of the engine's (SQLite works without the GIL), and
    the two top lists merged: 1.9x faster on that word (bench/search.py). bm25's statistics
    (document count, average length, the word's document frequency) are the whole index's
    in either half, so the merged list is the one query's, scores and order included. The
    other connection reads what is committed (a search in a transaction with uncommitted
    papers would miss some of them; the tracker searches after committing)."""

    def __init__(self, conn, engine, middle: int):
        self.conn, self.engine, self.middle = conn, engine, middle

    @classmethod
    def of(cls, conn, rows: int) -> _Halves | None:
        engine = conn.engine if hasattr(conn, "engine") else conn.get_bind()
        database = engine.url.database or ""
        if rows > HALVES_MAX_ROWS or (os.cpu_count() or 1) < 2 or database in ("", ":memory:") \
                or engine.url.query.get("mode") == "memory":
            return None  # an in-memory database is another database on each connection
        last = conn.execute(select(func.max(literal_column("rowid"))).select_from(papers))
        last = last.scalar() or 0
        return cls(conn, engine, last // 2) if last >= HALVES_MIN_PAPERS else None

    def top(self, hits, rowid, n: int):
        """`hits` (rowid, bm25; sorted by bm25, rowid and cut to n) run on each half; the
        merged top n as a subquery of literal rows."""
        def upper():
            with self.engine.connect() as other:
                return other.execute(hits.where(rowid > self.middle)).all()

        with ThreadPoolExecutor(max_workers=1) as pool:
            above = pool.submit(upper)
            below = self.conn.execute(hits.where(rowid <= self.middle)).all()
            found = sorted([*below, *above.result()], key=lambda r: (r.bm25, r.rowid))[:n]
        # one text clause with bound values (floats bound exactly); 50 Core SELECTs cost
        # more to build than the cheap queries take
        pairs = [(r.rowid, r.bm25) for r in found] or [(0, 0.0)]
        sql = " UNION ALL ".join(f"SELECT :r{i} AS rowid, :b{i} AS bm25"
                                 for i in range(len(pairs)))
        values = {}
        for i, (row, bm25) in enumerate(pairs):
            values[f"r{i}"], values[f"b{i}"] = row, bm25
        rows = text(sql + ("" if found else " WHERE 0")).bindparams(**values)
        return rows.columns(column("rowid", Integer), column("bm25", Float)).subquery()


def _match_postgres(stmt, side: _Side, node, author):
    def tsquery(loose: bool):
        parts = [q.to_tsquery(node, loose=loose)] if node is not None else []
        if author is not None:
            parts.append(q.to_tsquery(author, weight="B"))  # 0002 weights authors B
        return _tsquery(" & ".join(parts))

    vector = literal_column(f"{side.table.name}.search_vector")
    loose = tsquery(loose=True)  # what the GIN index finds, and what ranks
    if node is not None and q.has_stop_word_phrase(node):
        # the query as a tree of conditions, so that each such phrase is tested on the text
        # where it stands (under OR or NOT too); each @@ still uses the GIN index
        stmt = stmt.where(_condition(side, vector, node))
        if author is not None:
            stmt = stmt.where(vector.op("@@", is_comparison=True)(
                _tsquery(q.to_tsquery(author, weight="B"))))
    else:
        stmt = stmt.where(_within_fields(vector, loose, node, tsquery(loose=False)))
    return stmt, -func.ts_rank(vector, loose, 1)  # negated so that lower is better here too


def _within_fields(vector, loose, node, exact):
    """`vector @@ loose`, and for a query with a phrase `exact` too (its phrases within
    one field): as a function call, which only filters the rows the index found (each
    field's version of the phrases tested on every candidate took twice as long)."""
    match = vector.op("@@", is_comparison=True)(loose)
    return and_(match, func.ts_match_vq(vector, exact)) if q.has_phrase(node) else match


def _tsquery(text: str):
    return func.to_tsquery(literal_column("'english'::regconfig"), literal(text, String))


def _condition(side: _Side, vector, node):
    if isinstance(node, q.Not):
        return ~_condition(side, vector, node.part)
    if isinstance(node, q.And | q.Or):
        parts = [_condition(side, vector, part) for part in node.parts]
        return and_(*parts) if isinstance(node, q.And) else or_(*parts)
    match = _within_fields(vector, _tsquery(q.to_tsquery(node, loose=True)), node,
                           _tsquery(q.to_tsquery(node)))
    return and_(match, _phrase_on_text(side, node)) if q.stop_word_phrase(node) else match


_FIELD_BREAK = "\x1f"  # between fields of the text: no phrase runs across it


def _phrase_on_text(side: _Side, term):
    """The phrase's words in order within one field of the item's text, with only spaces
    or punctuation between them (the index reads punctuation as a word break, migration
    0006): stop words whole, other words as typed or from their English stem on, less its
    last letter ("codings" stems to "code"; "cod" starts "coding"). That pattern finds
    candidates ("of model" finds "of modern" too); each is then read as the index reads
    text and must match the phrase's tsquery, which tests the stems."""
    pieces = [literal(r"(\m", String)]
    for i, word in enumerate(term.words):
        if i:
            pieces.append(literal(f"[^[:alnum:]{_FIELD_BREAK}]+", String))
        if term.prefix and i == len(term.words) - 1:
            pieces.append(literal(word + "[[:alnum:]]*", String))
        elif word in q.STOPWORDS:
            pieces.append(literal(word + r"\M", String))
        else:
            stem = func.array_to_string(func.ts_lexize(
                literal_column("'english_stem'::regdictionary"), literal(word, String)), "")
            # a stem's last letter may differ from the word's (code: coding, happi: happy)
            start = func.left(stem, func.greatest(func.length(stem) - 1, 2))
            pieces.append(func.concat("(?:", literal(word, String), "|", start,
                                      ")[[:alnum:]]*"))
    pieces.append(literal(")", String))
    pattern = func.concat(*pieces)
    from sqlalchemy.dialects.postgresql import ARRAY, JSONB

    t = side.table
    if side.kind == "paper":  # the authors as the index reads them (jsonb decodes \u escapes)
        text = func.concat_ws(_FIELD_BREAK, t.c.title, t.c.abstract,
                              cast(cast(t.c.authors, JSONB), String))
    else:
        text = func.concat_ws(_FIELD_BREAK, t.c.title, t.c.summary_text, t.c.author)
    def is_phrase(candidate):  # read as migration 0006 reads text
        words = func.regexp_replace(candidate, _PUNCTUATION, " ", "g")
        return func.to_tsvector(literal_column("'english'::regconfig"), words) \
            .op("@@", is_comparison=True)(_tsquery(q.to_tsquery(term, "D")))  # no setweight

    # A regex match consumes its text, so a near-miss can hide a phrase that starts inside
    # it ("learners to learn" in "learners to learn to learn"). The quick pass reads the
    # candidates that do not overlap: true when one is the phrase, null when there are
    # none. Only when all of them failed are candidates read from every word a lookahead
    # finds one at (a mark goes there), which costs 3-5x more.
    found = func.regexp_matches(text, pattern, "gi").column_valued("found")  # [group]
    quick = select(func.bool_or(is_phrase(func.array_to_string(found, " ")))) \
        .scalar_subquery()
    marked = func.regexp_replace(func.translate(text, _MARK, " "),
                                 func.concat(r"\m(?=", pattern, ")"), _MARK, "gi")
    marks = select(type_coerce(func.string_to_array(marked, _MARK), ARRAY(String))
                   .label("parts")).correlate(t).lateral()
    subscripts = func.generate_subscripts(marks.c.parts, 1).table_valued("start") \
        .render_derived()
    start = subscripts.c.start  # part 1 is the text before the first mark
    # a phrase of n words spans at most n marks
    candidate = func.array_to_string(marks.c.parts[start:start + len(term.words) - 1], "")
    thorough = exists(select(literal(1)).select_from(marks.join(subscripts, true())).where(
        start > 1, is_phrase(func.substring(candidate, func.concat("(?i)^", pattern)))))
    return case({True: true(), False: thorough}, value=quick, else_=false())


_MARK = "\x1e"  # marks where a candidate starts (removed from the text beforehand)
_PUNCTUATION = "[!-/:-@[-`{-~]+"  # [:punct:] of the C locale: ASCII punctuation


def _filters(side: _Side, f: Filters, pg: bool, *, facets: bool = False,
             by_date: bool = False) -> tuple[list, list]:
    """(tests on the item's own columns, or with facets=True on PAPER_FACETS' copy of them;
    tests that need other tables)."""
    t = side.table
    c, date = (PAPER_FACETS.c, PAPER_FACETS.c.published) if facets else (t.c, side.date())
    own, other = [], []
    if f.since is not None:
        own.append(date >= f.since)
    if f.until is not None:
        own.append(date < f.until)
    if f.min_score is not None:
        score = c.score
        if by_date and not pg and not facets and side.kind == "paper":
            # `score + 0` is not indexable: SQLite then walks ix_papers_published_score
            # newest first and tests the score there, instead of sorting every paper above
            # the threshold (migration 0004)
            score = score + 0
        own.append(score >= f.min_score)
    if f.feed is not None:
        own.append(c.feed == f.feed)
    if f.categories:
        fn = func.json_array_elements_text if pg else func.json_each
        values = fn(c.categories).table_valued("value")
        # arXiv spells them one way (q-bio.NC); "q-bio.nc" typed by hand means the same
        own.append(exists(select(literal(1)).select_from(values).where(
            func.lower(values.c.value).in_([c.lower() for c in f.categories]))))
    if f.labelled is not None:
        owner = labels.c.paper_id if side.kind == "paper" else labels.c.post_id
        other.append(exists().where(owner == t.c.id, labels.c.label == f.labelled))
    rest = q.author_words(f.author or "")[1]
    if rest:
        other.append(_author_starts(side, rest, pg))
    return own, other


def _author_starts(side: _Side, words: tuple[str, ...], pg: bool):
    """One author's name has a word starting with each of `words` (the words the full-text
    index cannot test; see search_query.author_words)."""
    if side.kind == "post":
        return and_(*(_starts_a_word(side.table.c.author, w, pg) for w in words))
    # First on the stored JSON text as a whole, which is cheap (for ASCII words: the JSON
    # escapes other letters): anywhere (cheapest), then at the start of a word; then, for
    # several words, name by name, which is not cheap.
    text = cast(side.table.c.authors, String)
    ascii_words = [w for w in words if w.isascii()]
    whole = [text.ilike(f"%{w}%") if pg else text.like(f"%{w}%") for w in ascii_words]
    whole += [_starts_a_word(text, w, pg) for w in ascii_words]
    if len(ascii_words) == len(words) == 1:
        return and_(*whole)
    names = (func.json_array_elements_text if pg else func.json_each)(
        side.table.c.authors).table_valued("value")
    one_name = exists(select(literal(1)).select_from(names).where(
        *(_starts_a_word(names.c.value, w, pg) for w in words)))
    return and_(*whole, one_name)


_SEPARATORS = ".-'\",[]"  # what may come before a word of a name (JSON text included)


def _starts_a_word(text, word: str, pg: bool):
    if pg:  # ILIKE folds any case
        spaced = literal(" ") + func.translate(text, _SEPARATORS, " " * len(_SEPARATORS))
        return spaced.ilike(f"% {word}%")
    spaced = text
    for separator in _SEPARATORS:
        spaced = func.replace(spaced, separator, " ")
    spaced = literal(" ") + spaced
    # SQLite's LIKE folds ASCII letters only: for other letters the lower-case, capitalised
    # and upper-case forms (as names are written) are tried too
    forms = dict.fromkeys((word, word.capitalize(), word.upper()))  # word: lower case
    return or_(*(spaced.like(f"% {form}%") for form in forms))


def _order(c, sort: str, ranked: bool, pg: bool) -> list:
    """The sort keys before the tie-breaker. Relevance ties go straight to the tie-breaker:
    the full-text cut has the rowid at hand, not the date."""
    # SQLite already puts NULLs last in DESC order (and can then use the index).
    def desc(col):
        return col.desc().nulls_last() if pg else col.desc()

    if ranked:
        return [c.rank.asc()]
    if sort == "score":
        return [desc(c.score), desc(c.date)]
    return [desc(c.date)]


# --- rows -> item dicts -----------------------------------------------------------------

def item_dict(kind: str, row, label: str | None = None) -> dict:
    """The public shape of an item (JSON, CSV, feeds) from a papers or posts row (Core or
    ORM). Datetimes stay datetimes here."""
    if kind == "paper":
        return {
            "id": row.id, "kind": "paper", "title": row.title, "url": ARXIV_ABS + row.id,
            "published": row.published, "updated": row.updated, "score": row.score,
            "categories": list(row.categories or []), "authors": list(row.authors or []),
            "version": row.version, "feed": None, "primary_category": row.primary_category,
            "doi": row.doi, "label": label, "first_seen_at": row.first_seen_at,
            "summary": row.abstract,
        }
    return {
        "id": f"post:{row.id}", "kind": "post", "title": row.title, "url": row.link,
        "published": row.published, "updated": None, "score": row.score,
        "categories": [], "authors": [row.author] if row.author else [],
        "version": None, "feed": row.feed, "primary_category": None, "doi": None,
        "label": label, "first_seen_at": row.first_seen_at, "summary": row.summary_text,
    }


def load_items(conn, keys: list[tuple[str, object]]) -> list[dict]:
    """Item dicts for (kind, key) pairs, in the given order."""
    paper_ids = [key for kind, key in keys if kind == "paper"]
    post_ids = [key for kind, key in keys if kind == "post"]
    rows, found = {}, {}
    for kind, items, label_of, ids in (("paper", papers, labels.c.paper_id, paper_ids),
                                       ("post", posts, labels.c.post_id, post_ids)):
        for chunk in chunks(ids):
            rows.update(((kind, r.id), r) for r in
                        conn.execute(select(items).where(items.c.id.in_(chunk))))
            found.update(((kind, owner), label) for owner, label in conn.execute(
                select(label_of, labels.c.label).where(label_of.in_(chunk))))
    return [item_dict(key[0], rows[key], found.get(key)) for key in keys if key in rows]


# --- one item in full, and the whole store ---------------------------------------------

def show(conn, item_id: str) -> dict:
    """Everything about one item: the item dict plus versions, score history, label,
    linked posts or papers, and the digests it went out in."""
    kind, key = parse_item_id(item_id)
    t = papers if kind == "paper" else posts
    row = conn.execute(select(t).where(t.c.id == key)).first()
    if row is None:
        raise NotFoundError(f"no item {item_id!r} in the store",
                            hint="find ids with `tracker search`")
    owner = "paper_id" if kind == "paper" else "post_id"
    label = conn.execute(select(labels).where(labels.c[owner] == key)).first()
    record = item_dict(kind, row, label.label if label else None)
    record["label_at"] = label.created_at if label else None
    record["scores"] = [
        {"value": s.value, "model_version": s.model_version, "scored_at": s.scored_at,
         "why": list(s.why or [])}
        for s in conn.execute(select(scores).where(scores.c[owner] == key)
                              .order_by(scores.c.scored_at, scores.c.id))]
    d, i = digests.c, digest_items.c
    record["digests"] = [
        r._asdict() for r in conn.execute(
            select(d.id, d.period_start, d.period_end, d.status, d.sent_at, i.section,
                   i.position)
            .select_from(digests.join(digest_items))
            .where(i[owner] == key).order_by(d.period_end))]
    refs_c = post_refs.c
    if kind == "paper":
        record.update(comment=row.comment, journal_ref=row.journal_ref)
        v = paper_versions.c
        record["versions"] = [
            {"version": r.version, "title": r.title, "updated": r.updated, "seen_at": r.seen_at}
            for r in conn.execute(select(v.version, v.title, v.updated, v.seen_at)
                                  .where(v.paper_id == key).order_by(v.version))]
        refs = refs_c.value == row.id
        if row.doi:
            refs = or_(refs, refs_c.value == row.doi.lower())
        linked = select(refs_c.post_id).where(refs)
        record["posts"] = load_items(conn, [
            ("post", pid) for pid in conn.scalars(
                select(posts.c.id).where(posts.c.id.in_(linked)).order_by(posts.c.id))])
    else:
        refs = conn.execute(select(refs_c.kind, refs_c.value)
                            .where(refs_c.post_id == key)
                            .order_by(refs_c.kind, refs_c.value)).all()
        arxiv = [v for k, v in refs if k == "arxiv"]
        dois = [v for k, v in refs if k == "doi"]
        found = conn.scalars(select(papers.c.id).where(or_(
            papers.c.id.in_(arxiv), func.lower(papers.c.doi).in_(dois))).order_by(papers.c.id))
        record["refs"] = [{"kind": k, "value": v} for k, v in refs]
        record["papers"] = load_items(conn, [("paper", pid) for pid in found])
    return record


def count_items(conn) -> int:
    return sum(conn.execute(select(func.count()).select_from(t)).scalar_one()
               for t in (papers, posts))


def export(conn, batch: int = 500) -> Iterator[dict]:
    """Every paper, then every post, as item dicts; streamed in batches (server-side
    cursor on PostgreSQL), so memory stays flat however large the store."""
    for kind, t, owner in (("paper", papers, labels.c.paper_id),
                           ("post", posts, labels.c.post_id)):
        stmt = (select(t, labels.c.label.label("label_value"))
                .outerjoin(labels, owner == t.c.id)
                .order_by(t.c.id).execution_options(yield_per=batch))
        for row in conn.execute(stmt):
            yield item_dict(kind, row, row.label_value)
