"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd), recording every accepted message.

    with SmtpServer() as smtp:
        config = {"smtp": smtp.config(), "digest": {"recipients": ["a@example.org"]}}
        ...
        [message] = smtp.messages          # email.message.EmailMessage objects
        smtp.envelopes[0].rcpt_tos         # the SMTP envelope as sent

`smtp.refuse(code_and_text, times)` makes the next `times` messages fail with that reply
(e.g. "451 4.3.0 try again later", or "554 5.0.0 rejected");
`smtp.refuse_recipient(address, code_and_text)` refuses that address at RCPT TO.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage


@dataclass
class Envelope:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    def __init__(self, *, smtputf8: bool = True) -> None:
        self.smtputf8 = smtputf8  # whether it offers SMTPUTF8 (non-ASCII addresses)
        self.envelopes: list[Envelope] = []
        self._refusals: list[str] = []
        self._refused_recipients: dict[str, str] = {}
        self._lock = threading.Lock()
        self.port = _free_port()
        self._controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [message_from_bytes(e.content, policy=policy.default) for e in self.envelopes]

    def refuse(self, reply: str, times: int = 1) -> None:
        with self._lock:
            self._refusals += [reply] * times

    def refuse_recipient(self, address: str, reply: str) -> None:
        with self._lock:
            self._refused_recipients[address] = reply

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        with self._lock:
            if address in self._refused_recipients:
                return self._refused_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    def config(self) -> dict:
        """The [smtp] section that points the tracker at this server."""
        return {"host": "127.0.0.1", "port": self.port, "security": "none",
                "timeout_seconds": 10}

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        with self._lock:
            if self._refusals:
                return self._refusals.pop(0)
            self.envelopes.append(Envelope(envelope.mail_from, list(envelope.rcpt_tos),
                                           bytes(envelope.original_content or envelope.content)))
        return "250 Message accepted for delivery"

    def __enter__(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                      enable_SMTPUTF8=self.smtputf8)
        self._controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self._controller.stop()
