"""arXiv source: parsing real recorded API responses (read in place from ../shared), our own
inputs in the same format, the query we send, and the HTTP client against a local server."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.localserver import Reply
from tracker.errors import SourceError
from tracker.sources import arxiv as source

DATA = Path(__file__).parent / "data" / "arxiv"
_ID = re.compile(r"<id>http://arxiv\.org/abs/(.+?)v(\d+)</id>")


def recorded(shared_dir: Path) -> list[Path]:
    base = shared_dir / "fixtures" / "arxiv_api"
    return [*sorted((base / "bodies_extracted").glob("*.xml")),
            *sorted((base / "atom_xml").glob("*.xml"))]


def test_every_recorded_response_parses_to_its_entries(shared_dir):
    files = recorded(shared_dir)
    assert len(files) >= 10
    for path in files:
        raw = path.read_bytes()
        page = source.parse_page(raw)
        expected = [(m[1], int(m[2])) for m in _ID.finditer(raw.decode("utf-8"))]
        assert [(p.id, p.version) for p in page.papers] == expected, path.name
        total = re.search(rb"<opensearch:totalResults[^>]*>(\d+)<", raw)
        assert page.total == int(total[1]), path.name
        for paper in page.papers:
            assert paper.title and "\n" not in paper.title
            assert paper.published and paper.published.tzinfo is not None
            assert paper.updated and paper.updated >= paper.published
            assert paper.categories and paper.primary_category
            assert paper.authors and all(paper.authors)


def test_recorded_fields_old_style_id_and_metadata(shared_dir):
    base = shared_dir / "fixtures" / "arxiv_api" / "bodies_extracted"
    (old,) = source.parse_page(next(base.glob("id_astro-ph_0601001_*")).read_bytes()).papers
    assert (old.id, old.version, old.primary_category) == ("astro-ph/0601001", 1, "astro-ph")
    assert old.abs_url == "https://arxiv.org/abs/astro-ph/0601001"
    page = source.parse_page(next(base.glob("q_testing_s0_m10_*")).read_bytes())
    first = page.papers[0]
    assert first.id == "2202.12139" and first.doi == "10.1109/ICSTW55395.2022.00035"
    assert first.journal_ref.startswith("Artificial Intelligence in Software Testing")
    assert first.comment.startswith("Artificial Intelligence in Software Testing 2022")
    assert first.categories == ("cs.SE", "cs.LG") and first.primary_category == "cs.SE"
    assert first.authors[:2] == ("Mohit Kumar Ahuja", "Arnaud Gotlieb")
    assert first.updated == datetime(2022, 2, 24, 15, 5, 19, tzinfo=UTC)


def test_classic_format_with_per_element_namespaces(shared_dir):
    path = shared_dir / "fixtures" / "arxiv_api" / "atom_xml" / "search_query_au_del_maestro.xml"
    page = source.parse_page(path.read_bytes())
    assert page.total == 31 and page.start == 0 and len(page.papers) == 10
    assert page.papers[0].title == "A Luttinger Liquid Core Inside Helium-4 Filled Nanopores"
    assert page.papers[0].abstract.startswith("As helium-4 is cooled below 2.17 K")


def test_own_sample_versions_cross_lists_and_old_ids():
    page = source.parse_page((DATA / "versions_crosslist_oldstyle.xml").read_bytes())
    ids = [(p.id, p.version) for p in page.papers]
    assert ids == [("math/0211159", 1), ("2210.08340", 2), ("2209.03718", 1), ("2209.03718", 1)]
    assert page.papers[0].title == ("The entropy formula for the Ricci flow and its geometric "
                                    "applications")
    assert page.papers[2].categories == ("q-bio.NC", "cs.LG", "cs.NE")
    assert page.papers[2].title == "A cross-listed paper: spiking networks & cortex"


ENTRY = """<entry><id>http://arxiv.org/abs/{id}</id><title>A title</title>
<summary>Text.</summary>{extra}</entry>"""


def one_page(*entries: str) -> source.Page:
    return source.parse_page(('<feed xmlns="http://www.w3.org/2005/Atom" '
                              'xmlns:arxiv="http://arxiv.org/schemas/atom">'
                              + "".join(entries) + "</feed>").encode())


def test_odd_entries_are_read_as_the_ids_fields_and_names_they_hold():
    page = one_page(
        # an old-style id written with its subject class: the class is not part of the id
        ENTRY.format(id="math.AG/0211159v2", extra=""),
        # the paper's DOI and an erratum's in one element; a nameless author
        ENTRY.format(id="2612.00009v1", extra="<arxiv:doi>10.1103/PhysRevD.76.013009 "
                     "10.1103/PhysRevD.76.019901</arxiv:doi><author><name> </name></author>"
                     "<author><name>Ada Lovelace</name></author>"),
        # not an arXiv id at all
        ENTRY.format(id="2401.12345v1?context=cs", extra=""),
        ENTRY.format(id="foo bar", extra=""))
    assert [(p.id, p.version) for p in page.papers] == [("math/0211159", 2), ("2612.00009", 1)]
    assert page.papers[1].doi == "10.1103/PhysRevD.76.013009"
    assert page.papers[1].authors == ("Ada Lovelace",)
    assert page.skipped == 2


def test_latex_accents_are_read_as_the_letters_they_stand_for():
    (paper,) = one_page(
        """<entry><id>http://arxiv.org/abs/2612.00012v1</id>
        <title>Schr\\"odinger bridges and L\\'{e}vy flights</title>
        <summary>Ans\\"atze after Erd\\H{o}s-Szemer\\'edi, vis-\\`a-vis {\\"O}zt{\\"u}rk; math
        stays: $\\vec{x} \\cdot \\hat{y}$, a line\\\\'break.</summary>
        <author><name>Mar\\'{\\i}a Garc\\'\\i a Ko\\v{c}i</name></author>
        <author><name>Rene\u0301e Ng</name></author></entry>""").papers
    assert paper.title == "Schrödinger bridges and Lévy flights"
    assert paper.abstract == ("Ansätze after Erdős-Szemerédi, vis-à-vis Öztürk; math stays: "
                              "$\\vec{x} \\cdot \\hat{y}$, a line\\\\'break.")
    assert paper.authors == ("María García Koči", "Renée Ng")  # é in one form, as typed


def test_an_entry_without_a_published_date_takes_its_updated_date():
    page = one_page(ENTRY.format(id="2612.00010v3", extra="<updated>2026-12-01T10:00:00Z"
                                 "</updated><published>someday</published>"),
                    ENTRY.format(id="2612.00011v1", extra=""))
    dated, undated = page.papers
    assert dated.published == dated.updated == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert undated.published is None and undated.updated is None


def test_entities_expand_from_the_document_only_never_from_a_file(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")

    def page(title: str) -> source.Page:
        return source.parse_page((
            f'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY inner "Spiking">'
            f'<!ENTITY outer SYSTEM "{secret.as_uri()}">]>'
            '<feed xmlns="http://www.w3.org/2005/Atom">'
            + ENTRY.format(id="2401.00001v1", extra="").replace("A title", title)
            + "</feed>").encode())

    assert page("&inner; networks").papers[0].title == "Spiking networks"
    with pytest.raises(source.Retryable) as info:
        page("&outer; networks")
    assert "TOPSECRET" not in str(info.value)


def test_error_feed_is_a_clear_error_not_a_retry():
    with pytest.raises(SourceError, match="incorrect id format for 1234.12345"):
        source.parse_page((DATA / "error_400.xml").read_bytes())


@pytest.mark.parametrize("body", [b"", b"<html><body>Bad gateway</body></html>",
                                  b"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom'>"
                                  b"<entry><id>http://arxiv.org/abs/1"])
def test_broken_xml_is_retryable(body):
    with pytest.raises(source.Retryable):
        source.parse_page(body)


def test_window_query_uses_categories_extra_query_and_update_range():
    query = source.window_query(["q-bio.NC", "cs.NE"], "abs:brain",
                                datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
                                datetime(2026, 1, 9, 23, 59, 30, tzinfo=UTC))
    assert query == ("(cat:q-bio.NC OR cat:cs.NE) AND (abs:brain) AND "
                     "lastUpdatedDate:[202601020304 TO 202601092359]")


def test_date_chunks_cover_the_range_without_gaps():
    since, until = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 3, 12, tzinfo=UTC)
    chunks = list(source.date_chunks(since, until, 1))
    assert chunks[0][0] == since and chunks[-1][1] == until and len(chunks) == 3
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))


def _client(server, **kw):
    opts = {"delay_seconds": 0, "timeout_seconds": 2, "max_retries": 2} | kw
    return source.ArxivClient(server.url("/api/query"), **opts)


def test_client_400_error_feed_fails_without_retrying(local_server):
    local_server.route("/api/query", Reply(400, (DATA / "error_400.xml").read_bytes()))
    with pytest.raises(SourceError, match="HTTP 400: incorrect id format"):
        _client(local_server).get_page({"id_list": "1234.12345"}, expect_entries=False)
    assert len(local_server.requests) == 1


def test_client_gives_up_after_bounded_retries(local_server):
    local_server.route("/api/query", Reply(503, b"busy"))
    with pytest.raises(SourceError, match="HTTP 503.*gave up after 3 attempts"):
        _client(local_server).get_page({"start": "0"}, expect_entries=False)
    assert len(local_server.requests) == 3


def test_client_timeout_bounds_a_page_the_server_trickles_out(local_server):
    """requests' timeout bounds each socket read only: 64 bytes every 0.2 s would hold one
    page for minutes. Past the timeout the page is retried, then the fetch gives up."""
    sample = (DATA / "versions_crosslist_oldstyle.xml").read_bytes()
    local_server.route("/api/query", Reply(200, sample, trickle=0.2))
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"no answer within 0.5 s \(gave up after 2 attempts"):
        _client(local_server, timeout_seconds=0.5, max_retries=1).get_page(
            {"start": "0"}, expect_entries=False)
    assert time.monotonic() - started < len(sample) / 64 * 0.2 / 2  # well before the end
    assert len(local_server.requests) == 2


def test_client_refuses_an_unreasonable_retry_after(local_server):
    local_server.route("/api/query", Reply(429, b"slow down", {"Retry-After": "86400"}))
    with pytest.raises(SourceError, match="asked to wait 86400 s"):
        _client(local_server).get_page({"start": "0"}, expect_entries=False)
    assert len(local_server.requests) == 1


def test_client_keeps_the_configured_pace(local_server):
    """arXiv's rule: one request every delay_seconds (checked as a lower bound)."""
    sample = (DATA / "versions_crosslist_oldstyle.xml").read_bytes()
    local_server.route("/api/query", Reply(200, sample))
    client = _client(local_server, delay_seconds=0.3)
    for _ in range(3):
        client.get_page({"start": "0"}, expect_entries=False)
    stamps = [r.at for r in local_server.requests]
    assert all(b - a >= 0.29 for a, b in zip(stamps, stamps[1:], strict=False))
