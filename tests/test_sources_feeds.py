"""Feed parsing: identity, plain text, sanitized HTML, arXiv/DOI references, broken input."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tracker.errors import SourceError
from tracker.sources import feeds

DATA = Path(__file__).parent / "data" / "feeds"
URL = "https://neuro.example.org/feed/"


def parse(name: str, headers=None):
    return feeds.parse("neuro", URL, (DATA / name).read_bytes(),
                       headers or {"content-type": "application/rss+xml; charset=UTF-8"})


def test_identity_is_guid_then_link_then_hash_of_title_and_date():
    first, second, third = parse("neuro_rss.xml").posts
    assert first.guid == "https://neuro.example.org/?p=1201"
    assert second.guid == "https://neuro.example.org/2026/11/20/no-guid/"
    assert third.guid.startswith("sha256:") and third.link is None
    assert parse("neuro_rss.xml").posts[2].guid == third.guid  # stable across fetches


def test_plain_text_summary_and_sanitized_html():
    post = parse("neuro_rss.xml").posts[0]
    assert post.title == "Predictive coding, revisited & extended"
    assert post.summary_text == "A short tour of predictive coding – see the NeuroAI white paper."
    assert "<em>predictive coding</em>" in post.content_html
    for bad in ("<script", "alert(", "onclick", "<style", "color: red"):
        assert bad not in post.content_html
    assert post.author == "Pat Example"
    assert post.published.isoformat() == "2026-11-26T09:12:44+00:00"


def test_arxiv_ids_and_dois_are_extracted_from_links_and_text():
    first, second, _ = parse("neuro_rss.xml").posts
    assert first.refs == (("arxiv", "2209.03718"), ("arxiv", "2210.08340"),
                          ("arxiv", "math/0211159"), ("doi", "10.1038/s41467-023-37180-x"))
    assert second.refs == (("doi", "10.1101/2023.01.01.522222"),)


@pytest.mark.parametrize("text,expected", [
    ("see https://arxiv.org/abs/2401.01234v3.", {("arxiv", "2401.01234")}),
    ("arXiv: 1706.03762 and arxiv:hep-th/9901001v2", {("arxiv", "1706.03762"),
                                                      ("arxiv", "hep-th/9901001")}),
    ("https://arxiv.org/abs/math.AG/0211159", {("arxiv", "math/0211159")}),
    ("https://arxiv.org/ftp/arxiv/papers/2207/2207.01722.pdf", {("arxiv", "2207.01722")}),
    ("https://doi.org/10.48550/arXiv.2305.10601", {("arxiv", "2305.10601")}),
    ("(doi:10.1016/j.neuron.2020.01.001)", {("doi", "10.1016/j.neuron.2020.01.001")}),
    ("version 2024.1 of a tool, 3.14159", set()),
    # publisher URLs: the DOI without the page, format, query or preprint version after it
    ("https://www.biorxiv.org/content/10.1101/2023.01.01.522222v1.full.pdf",
     {("doi", "10.1101/2023.01.01.522222")}),
    ("https://www.nature.com/articles/10.1038/nn.4244/html?lang=en", {("doi", "10.1038/nn.4244")}),
    ("https://onlinelibrary.wiley.com/doi/epdf/10.1002/hbm.25000/full#sec1",
     {("doi", "10.1002/hbm.25000")}),
    ("https://doi.org/10.1093/brain/awz123.", {("doi", "10.1093/brain/awz123")}),
])
def test_reference_patterns(text, expected):
    assert set(feeds.extract_refs(text)) == expected


def test_ill_formed_feed_keeps_what_was_recovered_with_a_warning():
    parsed = parse("broken_atom.xml", {"content-type": "application/atom+xml"})
    assert [p.title for p in parsed.posts] == ["The one entry that arrived"]
    assert parsed.posts[0].link == "https://neuro.example.org/posts/one/"  # relative to the URL
    assert parsed.posts[0].summary_text == "Spiking networks & dendrites"
    assert parsed.warning.startswith("ill-formed feed: SAXParseException")
    assert "1 entries skipped" in parsed.warning  # the cut-off fragment


def test_a_document_that_is_not_a_feed_is_a_source_error():
    with pytest.raises(SourceError, match="is not an RSS/Atom feed"):
        parse("not_a_feed.html", {"content-type": "text/html"})


def test_plain_text_drops_script_bodies_and_decodes_entities():
    html = "<p>a &amp; b&nbsp;<script>var x = 1;</script><b>c</b> &#8220;d&#8221;</p>"
    assert feeds.plain_text(html) == "a & b c “d”"


def test_plain_text_keeps_words_apart_at_line_and_block_breaks():
    html = "<p>one</p><p>two</p>three<br>four<div>five</div><ul><li>six</li><li>seven</li></ul>"
    assert feeds.plain_text(html + "<b>ei</b>ght") == "one two three four five six seven eight"


ENTRIES = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:feed</id>{}</feed>"""


def parse_entries(*entries: str):
    return feeds.parse("neuro", URL, ENTRIES.format("".join(entries)).encode(),
                       {"content-type": "application/atom+xml"}).posts


def test_a_plain_text_title_keeps_what_looks_like_markup():
    text, markup = parse_entries(
        "<entry><id>1</id><title type='text'>Typing List&lt;String&gt; &amp; co</title></entry>",
        "<entry><id>2</id><title type='html'>&lt;i&gt;Dendrites&lt;/i&gt; &amp;amp; "
        "&lt;script&gt;alert(1)&lt;/script&gt;spikes</title></entry>")
    assert text.title == "Typing List<String> & co"
    assert markup.title == "Dendrites & spikes"


def test_a_summary_that_is_only_markup_gives_way_to_the_content():
    post, = parse_entries("<entry><id>1</id><title>t</title>"
                          "<summary type='html'>&lt;img src='x.png'&gt;</summary>"
                          "<content type='html'>&lt;p&gt;The text.&lt;/p&gt;</content></entry>")
    assert post.summary_text == "The text."


def test_entries_without_id_link_title_or_date_are_told_apart_by_their_text():
    first, second = parse_entries("<entry><summary>One note.</summary></entry>",
                                  "<entry><summary>Another note.</summary></entry>")
    assert first.guid.startswith("sha256:") and first.guid != second.guid
    again, = parse_entries("<entry><summary>One note.</summary></entry>")
    assert again.guid == first.guid


def test_accented_letters_are_stored_in_one_form():
    rss = ("<rss version='2.0'><channel><title>t</title><item><guid>a</guid>"
           "<title>Cafe\u0301 science</title><author>x@y.org (Rene\u0301e Ng)</author>"
           "<description>Nai\u0308ve models</description></item></channel></rss>").encode()
    post, = feeds.parse("neuro", URL, rss, {"content-type": "application/rss+xml"}).posts
    assert (post.title, post.author, post.summary_text) == ("Café science", "Renée Ng",
                                                             "Naïve models")


def test_the_author_is_a_name_not_an_email_address():
    rss = (b'<rss version="2.0"><channel><title>t</title><item><guid>a</guid><title>x</title>'
           b"<author>pat@neuro.example.org (Pat Example)</author></item></channel></rss>")
    post, = feeds.parse("neuro", URL, rss, {"content-type": "application/rss+xml"}).posts
    assert post.author == "Pat Example"


def test_connection_failure_is_one_short_reason():
    import socket

    from tracker.errors import SourceError
    from tracker.sources import feeds

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/feed"
    with pytest.raises(SourceError) as error:
        feeds.fetch(url, etag=None, last_modified=None, timeout=5, max_bytes=10_000,
                    user_agent="t")
    message = str(error.value)
    assert message.startswith(f"cannot fetch {url}: ") and "Connection refused" in message
    assert "HTTPConnectionPool" not in message and "\n" not in message


def test_the_timeout_bounds_a_body_the_server_trickles_out(local_server):
    """requests' timeout applies to each read: a server sending a byte now and then would
    hold the fetch (and its lease) for as long as it likes."""
    from tests.localserver import Reply

    body = (DATA / "neuro_rss.xml").read_bytes()  # 64 bytes every 0.2 s: several seconds
    local_server.route("/slow", Reply(200, body, {"Content-Type": "application/rss+xml"},
                                      trickle=0.2))
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"no answer from .* within 1 s"):
        feeds.fetch(local_server.url("/slow"), etag=None, last_modified=None, timeout=1.0,
                    max_bytes=1_000_000, user_agent="t")
    assert time.monotonic() - started < len(body) / 64 * 0.2 / 2  # well before the end


def test_a_gzipped_feed_is_read_and_its_cap_counts_the_unpacked_bytes(local_server):
    import gzip

    from tests.localserver import Reply

    gzipped = {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"}
    local_server.route("/gz", Reply(200, gzip.compress((DATA / "neuro_rss.xml").read_bytes()),
                                    gzipped))
    got = feeds.fetch(local_server.url("/gz"), etag=None, last_modified=None, timeout=5,
                      max_bytes=10_000, user_agent="t")
    assert got.body == (DATA / "neuro_rss.xml").read_bytes()
    bomb = gzip.compress(b"<rss>" + b" " * 20_000_000)  # 20 MB unpacked from ~20 kB
    local_server.route("/bomb", Reply(200, bomb, gzipped))
    with pytest.raises(SourceError, match="larger than 1000000 bytes"):
        feeds.fetch(local_server.url("/bomb"), etag=None, last_modified=None, timeout=5,
                    max_bytes=1_000_000, user_agent="t")


def test_a_date_no_post_can_have_is_no_date():
    """A post dated in 2099 would head every date-sorted listing for decades; one dated
    1900 or year 1 would read as archive and never reach a digest. Both are dropped (the
    post is kept, undated: first seen decides); real dates stay."""
    future, ancient, year_one, real = parse_entries(
        *(f"<entry><id>{i}</id><title>t{i}</title><updated>{stamp}</updated></entry>"
          for i, stamp in enumerate(("2099-01-01T00:00:00Z", "1900-01-01T00:00:00Z",
                                     "0001-01-01T00:00:00Z", "2026-11-20T08:00:00Z"))))
    assert (future.published, ancient.published, year_one.published) == (None, None, None)
    assert real.published.isoformat() == "2026-11-20T08:00:00+00:00"
    assert len({future.guid, ancient.guid, year_one.guid, real.guid}) == 4
    # without id or link, identity hashes the date as given: a post dated tomorrow + 2
    # days stays the same post when that day comes
    soon = "<entry><title>Soon</title><updated>{}</updated></entry>"
    ahead = (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    early, = parse_entries(soon.format(ahead))
    assert early.published is None
    real_date = feeds._date(time.strptime(ahead, "%Y-%m-%dT%H:%M:%SZ"))
    assert early.guid == feeds._identity({}, "Soon", real_date, early.summary_text)


def test_control_characters_are_dropped_from_what_is_stored():
    """A terminal would run ESC sequences (colours, OSC 8 links) printed by show or search,
    and they are invalid in the digest's HTML and in TeX. Tabs and line breaks are spaces."""
    raw, coded = parse_entries(
        "<entry><id>1</id><title type='text'>Esc \x1b[31mRED\x1b[0m \x07bell\x0bnext</title>"
        "<author><name>Ada\x1b]8;;http://evil/\x1b\\ Byron</name></author>"
        "<summary type='html'>&lt;p&gt;ctl\x01\x02 text&lt;/p&gt;</summary></entry>",
        "<entry><id>2</id><title type='html'>Coded &amp;#27;[1mbold&amp;#7;</title>"
        "<content type='html'>&lt;p&gt;a&amp;#27;b\x1b&lt;/p&gt;</content></entry>")
    assert raw.title == "Esc [31mRED[0m bell next" and raw.author == "Ada]8;;http://evil/\\ Byron"
    assert raw.summary_text == "ctl text"
    assert coded.title == "Coded [1mbold" and coded.summary_text == "ab"
    assert "\x1b" not in coded.content_html and "a" in coded.content_html
    assert feeds.plain_text("line1\x85line2\u2028three") == "line1 line2 three"  # breaks


def test_an_absurdly_long_link_is_dropped_and_a_long_author_shortened():
    """Stored whole, a 150,000-character link made the digest's best entry too big to send."""
    post, = parse_entries(f"<entry><id>1</id><title>t</title>"
                          f"<link href='https://blog.example/p?{'a' * 150_000}'/>"
                          f"<author><name>{'Ada Byron ' * 1000}</name></author></entry>")
    assert post.link is None and post.guid.endswith("/1")
    assert len(post.author) <= feeds.AUTHOR_MAX and post.author.startswith("Ada Byron Ada")
    ok, = parse_entries("<entry><id>2</id><title>t</title>"
                        "<link href='https://blog.example/a-normal-post'/></entry>")
    assert ok.link == "https://blog.example/a-normal-post"
