#!/usr/bin/env python3
"""A real SMTP server (aiosmtpd) playing a customer's mail server in tests.

Usage: upstream.py PORT STATE_DIR

Its behaviour is read from STATE_DIR/mode before every command, so a test can change
it while connections come and go:

  accept   250 to everything (the default)
  451      451 4.3.0 to EHLO, HELO and RCPT (a server in trouble: Lifeboat must fail
           over, and its probes fail until the mode changes)
  451-rcpt 451 4.3.0 to RCPT only (greets and answers EHLO, so probes pass)
  550      550 5.1.1 to RCPT (a permanent failure: Lifeboat must bounce)
  hang     never answer EHLO or RCPT (Lifeboat's command timeout must fire)
  slow-rcpt  answer RCPT after 4 s (a busy server); the most RCPTs it had waiting at
           once is written to STATE_DIR/rcpt_waiting_max

With a file STATE_DIR/tls present at start, STARTTLS is offered (a self-signed
certificate made with openssl), and each accepted message's session is noted in
STATE_DIR/sessions as "tls" or "plain".

Recipients listed in STATE_DIR/unknown (one per line) get 550 5.1.1 in every mode.
Each accepted message is written to STATE_DIR/mail/N.eml with X-Envelope-From and
X-Envelope-To lines first, so tests can count deliveries exactly.
"""
import asyncio
import os
import ssl
import subprocess
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

PORT = int(sys.argv[1])
STATE = sys.argv[2]
MAIL = os.path.join(STATE, "mail")
os.makedirs(MAIL, exist_ok=True)


def mode():
    try:
        with open(os.path.join(STATE, "mode")) as f:
            return f.read().strip() or "accept"
    except FileNotFoundError:
        return "accept"


def unknown():
    try:
        with open(os.path.join(STATE, "unknown")) as f:
            return {line.strip().lower() for line in f if line.strip()}
    except FileNotFoundError:
        return set()


class Handler:
    waiting = 0
    waiting_max = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        m = mode()
        if m == "451":
            return ["451 4.3.0 try again later"]
        if m == "hang":
            await asyncio.sleep(3600)
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        m = mode()
        if m == "451":
            return "451 4.3.0 try again later"
        if m == "hang":
            await asyncio.sleep(3600)
        session.host_name = hostname
        return "250 upstream.test"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        m = mode()
        if address.lower() in unknown():
            return "550 5.1.1 <%s>: user unknown" % address
        if m in ("451", "451-rcpt"):
            return "451 4.3.0 try again later"
        if m == "550":
            return "550 5.1.1 <%s>: user unknown" % address
        if m == "hang":
            await asyncio.sleep(3600)
        if m == "slow-rcpt":
            Handler.waiting += 1
            Handler.waiting_max = max(Handler.waiting_max, Handler.waiting)
            with open(os.path.join(STATE, "rcpt_waiting_max"), "w") as f:
                f.write(str(Handler.waiting_max))
            await asyncio.sleep(4)
            Handler.waiting -= 1
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        if mode() in ("451", "451-rcpt"):
            return "451 4.3.0 try again later"
        n = len(os.listdir(MAIL))
        tmp = os.path.join(MAIL, ".%d.tmp" % n)
        with open(tmp, "wb") as f:
            f.write(("X-Envelope-From: %s\r\n" % envelope.mail_from).encode())
            f.write(("X-Envelope-To: %s\r\n" % ",".join(envelope.rcpt_tos)).encode())
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(MAIL, "%d-%d.eml" % (n, os.getpid())))
        with open(os.path.join(STATE, "sessions"), "a") as f:
            f.write("tls\n" if session.ssl else "plain\n")
        return "250 2.0.0 OK"


TLS_CONTEXT = None
if os.path.exists(os.path.join(STATE, "tls")):
    cert, key = os.path.join(STATE, "cert.pem"), os.path.join(STATE, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
         "-out", cert, "-subj", "/CN=upstream.test", "-days", "1"],
        check=True, capture_output=True)
    TLS_CONTEXT = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    TLS_CONTEXT.load_cert_chain(cert, key)


class Controlled(Controller):
    def factory(self):
        return SMTP(self.handler, hostname="upstream.test", enable_SMTPUTF8=True,
                    tls_context=TLS_CONTEXT, require_starttls=False)


controller = Controlled(Handler(), hostname="127.0.0.1", port=PORT)
controller.start()
print("READY", flush=True)
try:
    asyncio.get_event_loop().run_forever()
except KeyboardInterrupt:
    pass
