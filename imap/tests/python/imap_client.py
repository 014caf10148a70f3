"""An IMAP client for the integration tests, on Python's imaplib.

Usage: python3 imap_client.py PLAN_JSON

PLAN_JSON is an object:
  host, port      where to connect
  mode            "plain" (default), "starttls" (STARTTLS with an unverified context)
                  or "ssl" (implicit TLS, unverified)
  actions         list of [name, args...], run in order:
                    login USER PASSWORD
                    authenticate_plain USER PASSWORD
                    capability, noop, logout, expunge, close, unselect
                    list [REFERENCE PATTERN]
                    lsub
                    select MAILBOX / examine MAILBOX
                    status MAILBOX ITEMS
                    create MAILBOX / delete MAILBOX
                    fetch SET ITEMS / uid_fetch SET ITEMS
                    search CRITERIA... / uid_search CRITERIA...
                    store SET COMMAND FLAGS / uid_store SET COMMAND FLAGS
                    copy SET MAILBOX / uid_copy SET MAILBOX
                    move SET MAILBOX / uid_move SET MAILBOX
                    uid_expunge SET
                    append MAILBOX FLAGS DATE BASE64_MESSAGE   (FLAGS/DATE may be null)
                    idle_until_exists SECONDS   IDLE; prints "IDLING" on stdout, then
                                                waits for an EXISTS response and
                                                returns it (or {"timeout": true})
                    raw LINE                    one command sent as is; the untagged
                                                and tagged lines that answer it
                    enable CAPABILITY           imaplib's ENABLE (UTF8=ACCEPT switches
                                                imaplib to UTF-8 mailbox names)
                    compress                    COMPRESS DEFLATE (RFC 4978), then every
                                                byte both ways through zlib; the
                                                result counts the compressed octets
                    wire                        octets sent and received on the socket
                                                since compress (raw DEFLATE), and
                                                received once decompressed
                    other_session ACTIONS...    the actions on a second connection,
                                                logged in as given there, closed after

Prints one JSON object (the last line of stdout): {"welcome": ..., "results": [...]}.
Each result is {"typ": "OK" | "NO" | "BAD", "data": [...], "untagged": {...}} where
data items are strings, or {"head": ..., "literal": BASE64} for literal responses, and
untagged holds imaplib's untagged responses seen by the command (EXISTS, EXPUNGE,
FETCH, COPYUID, APPENDUID, ...). An imaplib error is {"error": "..."}.
"""

import base64
import imaplib
import zlib
import json
import socket
import ssl
import sys
import time


def unverified():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def item(value):
    if isinstance(value, tuple):
        head, literal = value[0], value[1]
        return {
            "head": text(head),
            "literal": base64.b64encode(literal).decode() if isinstance(literal, bytes) else None,
        }
    if value is None:
        return None
    return text(value)


def untagged(client):
    responses = {}
    for key, values in client.untagged_responses.items():
        responses[key] = [item(v) for v in values]
    client.untagged_responses.clear()
    return responses


def result(client, answer):
    typ, data = answer
    return {"typ": typ, "data": [item(d) for d in (data or [])], "untagged": untagged(client)}


def idle_until_exists(client, seconds):
    tag = client._new_tag().decode()
    client.send(f"{tag} IDLE\r\n".encode())
    line = client.readline()
    if not line.startswith(b"+"):
        return {"error": text(line)}
    print("IDLING", flush=True)
    deadline = time.time() + seconds
    client.sock.settimeout(seconds)
    seen = []
    try:
        while time.time() < deadline:
            line = client.readline()
            if not line:
                break
            seen.append(text(line).rstrip("\r\n"))
            if line.rstrip().endswith(b"EXISTS"):
                print("GOT " + text(line).rstrip("\r\n"), flush=True)
                client.send(b"DONE\r\n")
                while True:
                    done = client.readline()
                    seen.append(text(done).rstrip("\r\n"))
                    if done.startswith(tag.encode()):
                        break
                return {"lines": seen}
    except (socket.timeout, TimeoutError):
        pass
    return {"timeout": True, "lines": seen}


def raw(client, line):
    tag = client._new_tag().decode()
    client.send(f"{tag} {line}\r\n".encode())
    lines = []
    while True:
        answer = client.readline()
        if not answer:
            lines.append("<closed>")
            break
        lines.append(text(answer).rstrip("\r\n"))
        if answer.startswith(tag.encode() + b" "):
            break
    return {"lines": lines}


def start_compress(client):
    """COMPRESS DEFLATE; from its OK on, raw DEFLATE both ways (RFC 4978 §3)."""
    tag = client._new_tag().decode()
    client.send(f"{tag} COMPRESS DEFLATE\r\n".encode())
    line = client.readline()
    if not line.startswith(tag.encode() + b" OK"):
        return {"error": text(line)}
    sock = client.sock
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    decompressor = zlib.decompressobj(-15)
    pending = bytearray()
    counters = client._wire = {"sent": 0, "received": 0, "received_plain": 0}

    def fill():
        chunk = sock.recv(65536)
        if not chunk:
            return False
        counters["received"] += len(chunk)
        plain = decompressor.decompress(chunk)
        counters["received_plain"] += len(plain)
        pending.extend(plain)
        return True

    def readline():
        while b"\n" not in pending:
            if not fill():
                break
        end = pending.find(b"\n") + 1 or len(pending)
        line = bytes(pending[:end])
        del pending[:end]
        return line

    def read(size):
        while len(pending) < size:
            if not fill():
                break
        data = bytes(pending[:size])
        del pending[:size]
        return data

    def send(data):
        out = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
        counters["sent"] += len(out)
        sock.sendall(out)

    client.readline = readline
    client.read = read
    client.send = send
    return {"typ": "OK", "data": [text(line).rstrip("\r\n")], "untagged": {}}


def connect(plan):
    host, port = plan["host"], plan["port"]
    mode = plan.get("mode", "plain")
    if mode == "ssl":
        return imaplib.IMAP4_SSL(host, port, ssl_context=unverified(), timeout=20)
    client = imaplib.IMAP4(host, port, timeout=20)
    if mode == "starttls":
        client.starttls(ssl_context=unverified())
    return client


def run_action(client, action, plan=None):
    name, args = action[0], action[1:]
    if name == "login":
        return result(client, client.login(args[0], args[1]))
    if name == "authenticate_plain":
        user, password = args
        return result(
            client,
            client.authenticate("PLAIN", lambda _: f"\0{user}\0{password}".encode()),
        )
    if name in ("capability", "noop", "logout", "expunge", "close", "unselect", "lsub"):
        if name == "unselect":
            return result(client, client.unselect())
        return result(client, getattr(client, name)())
    if name == "list":
        return result(client, client.list(*args))
    if name == "select":
        return result(client, client.select(args[0]))
    if name == "examine":
        return result(client, client.select(args[0], readonly=True))
    if name == "status":
        return result(client, client.status(args[0], args[1]))
    if name == "create":
        return result(client, client.create(args[0]))
    if name == "delete":
        return result(client, client.delete(args[0]))
    if name == "fetch":
        return result(client, client.fetch(args[0], args[1]))
    if name == "search":
        return result(client, client.search(None, *args))
    if name == "store":
        return result(client, client.store(*args))
    if name == "copy":
        return result(client, client.copy(args[0], args[1]))
    if name == "move":
        return result(client, client._simple_command("MOVE", args[0], args[1]))
    if name.startswith("uid_"):
        command = name[4:].upper()
        return result(client, client.uid(command, *args))
    if name == "append":
        mailbox, flags, date, message = args
        message = base64.b64decode(message)
        return result(client, client.append(mailbox, flags, date, message))
    if name == "idle_until_exists":
        return idle_until_exists(client, float(args[0]))
    if name == "raw":
        return raw(client, args[0])
    if name == "enable":
        return result(client, client.enable(args[0]))
    if name == "compress":
        return start_compress(client)
    if name == "wire":
        return dict(getattr(client, "_wire", {}))
    if name == "other_session":
        other = connect(plan)
        results = [run_action(other, nested, plan) for nested in args]
        try:
            other.logout()
        except (imaplib.IMAP4.error, OSError):
            pass
        return {"results": results}
    raise ValueError(f"unknown action {name}")


def main():
    plan = json.loads(sys.argv[1])
    client = connect(plan)
    output = {"welcome": text(client.welcome), "results": []}
    for action in plan["actions"]:
        try:
            output["results"].append(run_action(client, action, plan))
        except (imaplib.IMAP4.error, OSError) as error:
            output["results"].append({"error": str(error)})
    print(json.dumps(output), flush=True)


if __name__ == "__main__":
    main()
