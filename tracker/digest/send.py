"""Build the digest email and hand it to an SMTP server (smtplib).

Every failure to hand the message over becomes a SendError with one clear line; the password
never appears in a message or a log.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from tracker.config import SmtpConfig
from tracker.errors import SendError

log = logging.getLogger("tracker.digest")


@dataclass
class Delivery:
    message_id: str
    refused: dict  # recipient -> (code, reply) for recipients the server refused


def build_message(*, subject: str, sender: str, recipients: list[str], text: str, html: str,
                  now: datetime, list_id: str = "", unsubscribe: str = "") -> EmailMessage:
    """A multipart/alternative message: text first, HTML last (the preferred part)."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid("digest", domain=domain)
    if list_id:
        message["List-Id"] = list_id
    if unsubscribe:
        message["List-Unsubscribe"] = f"<{unsubscribe}>"
    message["Auto-Submitted"] = "auto-generated"  # no vacation auto-replies to the sender
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def _connect(smtp: SmtpConfig) -> smtplib.SMTP:
    if smtp.security == "ssl":
        return smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=smtp.timeout_seconds,
                                context=ssl.create_default_context())
    client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    if smtp.security == "starttls":
        client.starttls(context=ssl.create_default_context())
    return client


def deliver(message: EmailMessage, recipients: list[str], smtp: SmtpConfig,
            password: str | None) -> Delivery:
    """Send; return once the server accepted the message for at least one recipient."""
    host = f"[{smtp.host}]" if ":" in smtp.host else smtp.host  # an IPv6 address
    where = f"{host}:{smtp.port} ({smtp.security})"
    if smtp.username and not password:  # an empty AUTH LOGIN answer can leave a server waiting
        raise SendError("[smtp] username is set, but $TRACKER_SMTP_PASSWORD is not",
                        hint="export TRACKER_SMTP_PASSWORD=... for the mail account, or "
                             "leave [smtp] username empty for a server without login")
    try:
        client = _connect(smtp)
    except (OSError, smtplib.SMTPException) as exc:  # refused, DNS, timeout, TLS
        raise SendError(f"cannot connect to SMTP server {where}: {_reason(exc)}",
                        hint="check [smtp] host/port/security (and the server's TLS "
                        "certificate) and that the server is up"
                        ) from None
    try:
        if smtp.username:
            _login(client, where, smtp.username, password)
        refused = client.send_message(message, to_addrs=recipients)
    except (OSError, smtplib.SMTPException) as exc:
        raise SendError(f"SMTP server {where} did not accept the digest: {_reason(exc)}",
                        hint="nothing was recorded as sent; the next run retries") from None
    finally:
        _close(client)
    if refused:
        log.warning("SMTP server refused %d recipient(s): %s", len(refused),
                    refused_text(refused))
    return Delivery(message["Message-ID"], dict(refused))


def refused_text(refused: dict) -> str:
    """'addr (451 reply), ...' from smtplib's {recipient: (code, reply)}."""
    return ", ".join(f"{rcpt} ({code} {' '.join(_text(reply).split())})"
                     for rcpt, (code, reply) in sorted(refused.items()))


def _text(reply) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _login(client: smtplib.SMTP, where: str, username: str, password: str) -> None:
    try:
        client.login(username, password)
    except smtplib.SMTPAuthenticationError as exc:
        raise SendError(f"SMTP server {where} refused the login for {username!r}: "
                        f"{_reason(exc)}",
                        hint="check [smtp] username and $TRACKER_SMTP_PASSWORD") from None
    except smtplib.SMTPNotSupportedError:  # a server that offers no AUTH
        raise SendError(f"SMTP server {where} offers no login, but [smtp] username is set",
                        hint="leave [smtp] username empty for this server, or use the "
                        "security it offers a login with (starttls or ssl)") from None
    except UnicodeEncodeError:  # smtplib sends credentials as ASCII; the error would quote
        # a character of the password, so it is not shown
        raise SendError("[smtp] username or $TRACKER_SMTP_PASSWORD holds a non-ASCII "
                        "character, which SMTP login cannot send",
                        hint="use an ASCII-only password for the mail account") from None


def _close(client: smtplib.SMTP) -> None:
    """Say QUIT; once DATA was accepted a failure here must not turn into a send error."""
    try:
        client.quit()
    except (OSError, smtplib.SMTPException):
        client.close()


def _reason(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {' '.join(_text(exc.smtp_error).split())}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "every recipient was refused: " + refused_text(exc.recipients)
    return " ".join(str(exc).split()) or type(exc).__name__
