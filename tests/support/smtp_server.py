"""A real SMTP server for the alert tests: Debian's python3-aiosmtpd on a loopback port.

    smtp_server.py PORT OUTDIR MODE [CERT KEY]

MODE: plain (no TLS, no auth), starttls (STARTTLS required, then AUTH required), smtps (TLS
from the first byte, AUTH required), refuse (every message answered 554), auth-no-tls (AUTH
offered over the plain connection and no STARTTLS: what a man in the middle who strips
STARTTLS shows a client; every AUTH attempt is recorded as OUTDIR/auth-NNN.attempt). The login is
`alerts` with the password `p@ss/w:rd`.

Each message received is kept as OUTDIR/NNN.json: the envelope, whether the session was
encrypted and authenticated, and the message parsed by Python's email package (subject,
from, to, content type, the text). Prints "ready" once it listens; runs until killed.
"""
import email
import email.policy
import json
import logging
import os
import signal
import ssl
import sys
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

LOGIN, PASSWORD = b"alerts", b"p@ss/w:rd"


class Keep:
    def __init__(self, outdir, refuse):
        self.outdir, self.refuse = outdir, refuse

    async def handle_DATA(self, server, session, envelope):
        if self.refuse:
            return "554 5.7.1 refused by the test server"
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        n = len([f for f in os.listdir(self.outdir) if f.endswith(".json")])
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None,
            "authenticated": bool(session.authenticated),
            "login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
            "subject": str(msg["subject"]),
            "from": str(msg["from"]),
            "to": str(msg["to"]),
            "content_type": msg.get_content_type(),
            "text": body.get_content() if body is not None else None,
        }
        tmp = os.path.join(self.outdir, f".{n:03}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f, ensure_ascii=False)
        os.rename(tmp, os.path.join(self.outdir, f"{n:03}.json"))
        return "250 OK kept"


def check(server, session, envelope, mechanism, auth_data):
    if getattr(server, "record_auth", None):
        n = len([f for f in os.listdir(server.record_auth) if f.endswith(".attempt")])
        with open(os.path.join(server.record_auth, f"auth-{n:03}.attempt"), "w") as f:
            f.write(mechanism)
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == LOGIN and auth_data.password == PASSWORD
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


def main():
    # Quiet: AUTH over implicit TLS (smtps) makes aiosmtpd warn that it does not require STARTTLS.
    warnings.simplefilter("ignore")
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    port, outdir, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    kw = {}
    if mode in ("starttls", "smtps"):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(sys.argv[4], sys.argv[5])
        kw.update(authenticator=check, auth_required=True)
        if mode == "starttls":
            kw.update(tls_context=ctx, require_starttls=True)
        else:
            kw.update(ssl_context=ctx, auth_require_tls=False)
    if mode == "auth-no-tls":
        kw.update(authenticator=check, auth_required=False, auth_require_tls=False)
    c = Controller(Keep(outdir, mode == "refuse"), hostname="127.0.0.1", port=port, **kw)
    c.start()
    if mode == "auth-no-tls":
        c.smtpd.record_auth = outdir
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    c.stop()


if __name__ == "__main__":
    main()
