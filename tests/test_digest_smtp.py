"""SMTP failures and transports against real aiosmtpd servers: refusal, server down, login,
STARTTLS and implicit TLS (with a self-signed test certificate). Nothing is recorded as sent
when the server did not accept the digest, and the next run sends it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import TEST_DATA
from tests.smtpd import SmtpServer
from tests.test_digest_send import NOW, digest_config, ledger, ledger_items, seed_week
from tracker.errors import SendError
from tracker.pipeline import App
from tracker.pipeline.digest import send_digest


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def week_app(make_config, smtp):
    application = App(digest_config(make_config, smtp))
    seed_week(application)
    yield application
    application.close()


def test_smtp_refusal_is_a_clear_error_nothing_recorded_and_next_run_sends(week_app, smtp):
    smtp.refuse("554 5.7.1 message rejected by policy")
    with pytest.raises(SendError) as error:
        send_digest(week_app, now=NOW)

    assert "554 5.7.1 message rejected by policy" in str(error.value)
    assert "\n" not in str(error.value)
    [row] = ledger(week_app)
    assert row.status == "failed" and "554" in row.error
    assert ledger_items(week_app, row.id) == [] and not smtp.envelopes

    retry = send_digest(week_app, now=NOW + timedelta(hours=1))
    assert retry.status == "sent" and len(smtp.envelopes) == 1
    [row] = ledger(week_app)
    assert row.status == "sent" and len(ledger_items(week_app, row.id)) == 11


def test_smtp_down_is_a_clear_error_and_the_next_run_sends(make_config):
    server = SmtpServer()  # port reserved, nothing listening yet
    app = App(digest_config(make_config, server))
    seed_week(app)
    with pytest.raises(SendError) as error:
        send_digest(app, now=NOW)
    assert f"cannot connect to SMTP server 127.0.0.1:{server.port}" in str(error.value)
    assert [row.status for row in ledger(app)] == ["failed"]

    with server:
        assert send_digest(app, now=NOW + timedelta(hours=1)).status == "sent"
        assert len(server.envelopes) == 1
    assert [row.status for row in ledger(app)] == ["sent"]


class AuthSmtpServer(SmtpServer):
    """The shared server plus AUTH PLAIN over plain TCP (for the test only)."""

    password = "s3cret-pw"

    def __enter__(self):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        def check(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == b"digest" and auth_data.password == self.password.encode()
            return AuthResult(success=ok, handled=False)  # let aiosmtpd send the 535

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                      auth_require_tls=False, authenticator=check,
                                      auth_exclude_mechanism=["LOGIN"])
        self._controller.start()
        return self


def test_login_uses_the_password_from_the_environment_and_never_shows_it(
        make_config, monkeypatch, caplog):
    with AuthSmtpServer() as server:
        raw_smtp = {**server.config(), "username": "digest"}
        config = make_config({"smtp": raw_smtp, "feeds": [],
                              "digest": {"recipients": ["ada@example.org"]}})
        app = App(config)
        monkeypatch.setenv("TRACKER_SMTP_PASSWORD", "wrong-password")
        with pytest.raises(SendError) as error:
            send_digest(app, now=NOW)
        assert "refused the login for 'digest'" in str(error.value)
        assert "wrong-password" not in str(error.value) + caplog.text

        monkeypatch.setenv("TRACKER_SMTP_PASSWORD", server.password)
        assert send_digest(app, now=NOW).status == "sent"
        assert len(server.envelopes) == 1
        assert server.password not in caplog.text


# -- TLS -----------------------------------------------------------------------------------

CERT = TEST_DATA / "digest" / "test_smtp_cert.pem"  # self-signed for 127.0.0.1, test only
KEY = TEST_DATA / "digest" / "test_smtp_key.pem"


class TlsSmtpServer(SmtpServer):
    """The shared server speaking STARTTLS (required before MAIL) or implicit TLS."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def config(self) -> dict:
        return {**super().config(), "security": self.mode}

    def __enter__(self):
        import ssl

        from aiosmtpd.controller import Controller

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(CERT, KEY)
        options = ({"tls_context": context, "require_starttls": True} if self.mode == "starttls"
                   else {"ssl_context": context})
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_modes_send_and_check_the_certificate(make_config, monkeypatch, mode):
    with TlsSmtpServer(mode) as server:
        app = App(digest_config(make_config, server))
        seed_week(app)
        with pytest.raises(SendError) as error:  # the system CAs do not trust our test cert
            send_digest(app, now=NOW)
        assert "certificate verify failed" in str(error.value)
        assert not server.envelopes

        monkeypatch.setenv("SSL_CERT_FILE", str(CERT))  # now trust it, as an admin would
        assert send_digest(app, now=NOW + timedelta(minutes=5)).status == "sent"
        assert len(server.envelopes) == 1
        assert server.messages[0]["Subject"] == "NeuroAI digest: 16 Nov to 23 Nov 2026"


def test_starttls_configured_but_not_offered_is_a_clear_error(make_config, smtp):
    plain = {**smtp.config(), "security": "starttls"}
    app = App(make_config({"smtp": plain, "feeds": [], "digest": {"recipients": ["a@b.org"]}}))
    with pytest.raises(SendError) as error:
        send_digest(app, now=NOW)
    assert "STARTTLS extension not supported by server" in str(error.value)
    assert "[smtp]" in error.value.hint and not smtp.envelopes
