"""Config loading, lookup order, every kind of error, and secret masking."""

from dataclasses import MISSING
from pathlib import Path

import pytest

from tracker import config
from tracker.errors import ConfigError

REPO_CONFIG = Path(__file__).resolve().parents[1] / "config" / "tracker.toml"


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "t.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_committed_config_equals_built_in_defaults():
    # The commented file documents the defaults; they must not drift apart.
    assert config.load(REPO_CONFIG).to_dict() == config.Config().to_dict()


def test_every_key_is_documented_with_a_comment_in_committed_config():
    lines = [line.strip() for line in REPO_CONFIG.read_text().splitlines()]
    for section, model in config.Config().to_dict().items():
        if not isinstance(model, dict):
            continue  # [[feeds]] is documented as a whole
        header = lines.index(f"[{section}]")
        for key, value in model.items():
            if isinstance(value, dict):
                assert f"[{section}.{key}]" in lines, f"[{section}.{key}] missing"
                continue
            at = next(i for i in range(header + 1, len(lines)) if lines[i].startswith(f"{key} ="))
            assert lines[at - 1].startswith("#"), f"{section}.{key} has no comment above it"


def test_lookup_order(tmp_path, monkeypatch):
    assert config.load().source == "<defaults>"
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "tracker.toml").write_text("[digest]\nmax_items = 5\n")
    assert config.load().digest.max_items == 5
    env_file = write(tmp_path, "[digest]\nmax_items = 6\n")
    monkeypatch.setenv("TRACKER_CONFIG", str(env_file))
    assert config.load().digest.max_items == 6
    explicit = tmp_path / "x.toml"
    explicit.write_text("[digest]\nmax_items = 7\n")
    assert config.load(explicit).digest.max_items == 7


def test_database_url_from_environment_wins(tmp_path, monkeypatch):
    cfg = config.load(write(tmp_path, '[database]\nurl = "sqlite:///a.db"\n'))
    assert cfg.database_url == "sqlite:///a.db"
    monkeypatch.setenv("TRACKER_DATABASE_URL", "postgresql+psycopg://u:s3cret@h/db")
    assert cfg.database_url == "postgresql+psycopg://u:s3cret@h/db"
    assert "s3cret" not in str(cfg.masked())


def test_smtp_password_only_from_environment(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match=r"smtp\.password': unknown key; secrets are never "
                                          r"read from the file: set \$TRACKER_SMTP_PASSWORD"):
        config.load(write(tmp_path, '[smtp]\npassword = "x"\n'))
    monkeypatch.setenv("TRACKER_SMTP_PASSWORD", "hunter2")
    cfg = config.load()
    assert cfg.smtp_password == "hunter2"
    assert "hunter2" not in str(cfg.masked())


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[digest\nmax_items = 3", "invalid TOML"),
        ("[arxiv]\ncategoriez = []\n",
         r"key 'arxiv.categoriez': unknown key \(did you mean 'categories'\?\)"),
        ("[arxiv]\ndelay = 3\n", r"key 'arxiv.delay': unknown key \(did you mean 'delay_seconds'"),
        ("colour = 1\n", "key 'colour': unknown key"),
        ('[digest]\nmax_items = "ten"\n', "key 'digest.max_items': .*integer"),
        ("[digest]\nmax_items = 0\n", "key 'digest.max_items': .*greater than or equal to 1"),
        ('[schedule]\nfetch = "61 * * * *"\n',
         r"key 'schedule.fetch': '61 \* \* \* \*' is not a valid cron expression"),
        ('[schedule]\ndigest = "every monday"\n',
         "key 'schedule.digest': 'every monday' is not a valid cron.*wrong "
         "number of fields"),
        ('[schedule]\ntimezone = "Mars/Olympus"\n', "key 'schedule.timezone': unknown time zone"),
        ('[schedule]\ndigest = "0 8 31 2 *"\n', "key 'schedule.digest': .* never fires"),
        ('[schedule]\ndigest = "0 8 * * 8"\n', "key 'schedule.digest': .*bad day of week"),
        ('[schedule]\ndigest = "0 8 * * 5-3"\n', "key 'schedule.digest': .*bad day of week"),
        # cron fires when either matches, APScheduler only when both do
        ('[schedule]\ndigest = "0 8 1,15 * mon"\n',
         "key 'schedule.digest': '0 8 1,15 \\* mon' is not a valid cron expression \\(it "
         "restricts both the day of the month and the day of the week"),
        ('[arxiv]\napi_url = "ftp://x"\n', "key 'arxiv.api_url': expected an http"),
        ("[arxiv]\ncategories = []\n", "key 'arxiv.categories': empty, and .* query is empty"),
        ('[[feeds]]\nname = "a"\nurl = "not a url"\n', "key 'feeds.0.url': expected an http"),
        ('[[feeds]]\nname = "a"\nurl = "http://x/1"\n[[feeds]]\nname = "a"\nurl = "http://x/2"\n',
         "feed names must be unique"),
        ('[smtp]\nhost = ""\n', "key 'smtp.host': '' is not a host name"),
        ('[smtp]\nhost = "smtp.example.org:587"\n', "key 'smtp.host': .*the port is"),
        ('[smtp]\nsecurity = "tls"\n', "key 'smtp.security': .*'starttls', 'ssl' or 'none'"),
        ('[digest]\nrecipients = ["nobody"]\n', "key 'digest.recipients': .*not one email"),
        # one list item, two addresses: only the first would get the email
        ('[digest]\nrecipients = ["ada@example.org, ben@example.org"]\n',
         "key 'digest.recipients': 'ada@example.org, ben@example.org' is not one email"),
        ('[digest]\nrecipients = ["@"]\n', "key 'digest.recipients': '@' is not one email"),
        ('[digest]\nsender = "not an address"\n', "key 'digest.sender': .*not an email"),
        # a line break in a header setting would end the header there (or inject another)
        ('[digest]\nsubject = "Digest\\nBcc: evil@example.org"\n',
         "key 'digest.subject': must be one line"),
        ('[digest]\nsender = "t@example.org\\nBcc: evil@example.org"\n',
         "key 'digest.sender': must be one line"),
        ('[digest]\nlist_id = "x\\r\\ny"\n', "key 'digest.list_id': must be one line"),
        # other line breaks (\v, NEL, U+2028) and control characters: the email package
        # refuses a header holding them, so the send failed after the check had passed
        *((f'[digest]\nsubject = "Digest{ch} {{start:%d %b}}"\n',
           "key 'digest.subject': must be one line")
          for ch in (r"\u000b", r"\u0085", r"\u2028", r"\u001b", r"\t")),
        ('[digest]\nsubject = "Digest {start:%d %b}\\u2029"\n',  # a break at the end, too
         "key 'digest.subject': must be one line"),
        ('[digest]\nunsubscribe = "https://x.org/u\\nX: y"\n',
         "key 'digest.unsubscribe': must be one line"),
        ('[digest]\nsubject = "Digest {start[0]}"\n', "key 'digest.subject': cannot be formatted"),
        ("[smtp]\ntimeout_seconds = inf\n", "key 'smtp.timeout_seconds': expected a finite"),
        ("[digest]\nmin_score = nan\n", "key 'digest.min_score': expected a finite"),
        ('[database]\nurl = "postgresql+psycopg://u@127.0.0.1:notaport/x"\n',
         "key 'database.url': the port in the URL is not a number"),
        ('[relevance.keywords]\n"brain" = "high"\n', "key 'relevance.keywords.brain'"),
        ('[relevance.keywords]\n"Place cell" = 1.0\n"place-cell" = 2.0\n',
         "key 'relevance.keywords': 'Place cell' and 'place-cell' are the same phrase"),
        # the matcher reads "place cell" in "place cells" too: a text would count both
        ('[relevance.keywords]\n"place cells" = 1.0\n"place cell" = 2.0\n',
         "key 'relevance.keywords': 'place cell' already matches 'place cells'"),
        ('[relevance.keywords]\n"brain" = 1.0\n"brainses" = 2.0\n"brain process" = 1.0\n'
         '"brain processes" = 1.0\n', "'brain process' already matches 'brain processes'"),
        ('[database]\nurl = "mysql://x"\n', "key 'database.url': expected a sqlite"),
        ('[database]\nurl = "sqlitefoo://x"\n', "key 'database.url': expected a sqlite"),
        # two slashes make "relative.db" a host; an in-memory store is gone when a command ends
        ('[database]\nurl = "sqlite://relative.db"\n',
         "key 'database.url': .*three slashes.*sqlite:///relative.db"),
        ('[database]\nurl = "sqlite://"\n', "key 'database.url': .*three slashes"),
        ('[database]\nurl = "sqlite:///"\n', "key 'database.url': .*file path"),
        ('[database]\nurl = "sqlite:///:memory:"\n', "key 'database.url': .*file path"),
        ('[database]\nurl = "sqlite+foo:///x.db"\n', "key 'database.url': .*sqlite:///"),
        ('[digest]\nsubject = "{start:%d %b"\n', "key 'digest.subject': cannot be formatted"),
        ('[digest]\nsubject = "Digest {week}"\n', "key 'digest.subject': cannot be formatted"),
        ('[digest]\nunsubscribe = "foo bar"\n', "key 'digest.unsubscribe': expected a mailto"),
        ('[digest]\nunsubscribe = "http://x/u"\n', "key 'digest.unsubscribe': expected a mailto"),
        ("database = 3\n", "key 'database'"),
        ("[arxiv]\nenabled = 1\n", "key 'arxiv.enabled': expected a boolean"),
        ('[arxiv]\ncategories = ["q-bio.NC cs.NE"]\n',
         "key 'arxiv.categories': 'q-bio.NC cs.NE' is not an arXiv category code"),
        ('[arxiv]\ncategories = ["cs.LG", ""]\n', "key 'arxiv.categories': '' is not"),
        ('[[feeds]]\nname = "feeds"\nurl = "http://x/1"\n', "key 'feeds': 'feeds' is reserved"),
        ('[arxiv]\ncategories = ["q-bio.NC", 2]\n', "key 'arxiv.categories.1': expected a string"),
        ("[arxiv]\npage_size = 2001\n", "key 'arxiv.page_size': .*less than or equal to 2000"),
        ('[[feeds]]\nurl = "http://x/1"\n', "key 'feeds.0.name': required key is missing"),
        ('[[feeds]]\nname = ""\nurl = "http://x/1"\n', "key 'feeds.0.name': .*at least 1"),
        (f'[[feeds]]\nname = "{"n" * 129}"\nurl = "http://x/1"\n',
         "key 'feeds.0.name': at most 128 characters"),
        ('[relevance]\nmodel_path = ""\n', "key 'relevance.model_path': .*at least 1"),
        ('[relevance]\nseed_papers = ["2210.08340", "hello world"]\n',
         "key 'relevance.seed_papers': 'hello world' is not an arXiv id"),
        ('[relevance]\nseed_papers = ["post:3"]\n', "key 'relevance.seed_papers': 'post:3'"),
        ("[feed_fetch]\ntimeout_seconds = 0\n",
         "key 'feed_fetch.timeout_seconds': .*greater than 0"),
    ],
)
def test_invalid_config_names_file_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=expected) as info:
        config.load(path)
    assert str(path) in str(info.value)
    assert info.value.exit_code == 2


def test_every_bad_key_is_reported_and_integers_widen_to_floats(tmp_path):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, "[digest]\nmax_items = 0\ncolour = 1\n[smtp]\nport = 0\n"))
    assert [line.split("key ")[1].split(":")[0] for line in str(info.value).splitlines()] == [
        "'digest.colour'", "'digest.max_items'", "'smtp.port'"]
    cfg = config.load(write(tmp_path, "[arxiv]\ndelay_seconds = 1\n"))
    assert cfg.arxiv.delay_seconds == 1.0 and isinstance(cfg.arxiv.delay_seconds, float)


def test_an_smtp_host_may_be_a_name_or_an_ip_address():
    for host in ("smtp.example.org", "127.0.0.1", "::1", "2001:db8::25"):
        assert config.from_dict({"smtp": {"host": host}}).smtp.host == host


def test_defaults_pass_their_own_checks():
    # from_dict skips the check of a value equal to the default, so each default must pass.
    from dataclasses import fields

    sections = [config.DatabaseConfig, config.ArxivConfig, config.FeedConfig,
                config.FeedFetchConfig, config.RelevanceConfig, config.ScheduleConfig,
                config.DigestConfig, config.SmtpConfig, config.Config]
    checked = 0
    for section in sections:
        for spec in fields(section):
            check = spec.metadata.get("check")
            if check is not None and spec.default is not MISSING:
                check(spec.default)
                checked += 1
    assert checked == 10  # database.url, arxiv.api_url, schedule: timezone, fetch, digest;
    # digest: sender, subject, list_id, unsubscribe; smtp.host


def test_missing_explicit_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "nope.toml")


def test_relevance_hash_tracks_keywords():
    base = config.Config()
    changed = config.from_dict({"relevance": {"keywords": {"dendritic computation": 2.0}}})
    assert base.relevance_hash() != changed.relevance_hash()
    assert base.relevance_hash() == config.Config().relevance_hash()
    # how many labels training needs changes no score
    fewer = config.from_dict({"relevance": {"min_relevant": 5}})
    assert base.relevance_hash() == fewer.relevance_hash()


def test_mask_url():
    assert config.mask_url("postgresql://u:pw@h:5/d") == "postgresql://u:***@h:5/d"
    assert config.mask_url("sqlite:///x.db") == "sqlite:///x.db"
    # SQLAlchemy reads a password up to the first '@': '#', '/' and '?' belong to it
    for password in ("Top#Secret", "a/b", "why?not"):
        masked = config.mask_url(f"postgresql+psycopg://u:{password}@127.0.0.1:5999/x")
        assert masked == "postgresql+psycopg://u:***@127.0.0.1:5999/x"
    # an unencoded '@' in the password: all of it, not just what comes before the '@'
    assert config.mask_url("postgresql+psycopg://u:S3c@retPW@127.0.0.1/x") == \
        "postgresql+psycopg://u:***@127.0.0.1/x"
    # psycopg also takes the password as a query parameter
    assert config.mask_url("postgresql+psycopg://u@h/x?sslmode=require&password=S3cret") == \
        "postgresql+psycopg://u@h/x?sslmode=require&password=***"
    assert config.mask_url("postgresql+psycopg://u@h/x?PASSWORD=S3cret&a=b") == \
        "postgresql+psycopg://u@h/x?PASSWORD=***&a=b"
