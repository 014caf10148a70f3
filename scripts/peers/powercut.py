"""Portal clients for the power-cut test (server/tests/powercut.rs).

    powercut.py load ROUND SMTP IMAP POP3 SECONDS SEED
        Mail to alice@example.test over SMTP (3 threads), IMAP APPEND to Archive,
        STORE \\Flagged and expunges (of SMTP thread 0 and 1 messages), POP3 DELE (of
        thread 2 messages). Prints `TRY KIND SUBJECT` before each operation and
        `ACK KIND SUBJECT` once the server said OK. Stops after SECONDS, or once the
        server is gone.
    powercut.py dump IMAP MINUID_INBOX MINUID_ARCHIVE
        Prints `VALIDITY FOLDER N` and `MSG FOLDER UID SUBJECT FLAGS STATE` for every
        message of INBOX and Archive; STATE is `intact` or `damaged` for messages with
        a UID above the folder's MINUID (their whole body is checked), `-` otherwise.
"""

import imaplib
import poplib
import random
import re
import smtplib
import sys
import threading
import time

HOST = "127.0.0.1"
USER = "alice@example.test"
PASSWORD = "correct horse battery"
lock = threading.Lock()


def say(*words):
    with lock:
        print(*words, flush=True)


def word(subject):
    """A word unique to the message, for text search: w0003x1x00017."""
    r, t, i = subject.strip("<>").split("-")[1:]
    t = {"a": "9"}.get(t, t)
    return "w%04dx%sx%05d" % (int(r), t, int(i))


def body(subject):
    lines = [word(subject)] + ["%s %s" % ("x" * 70, subject)] * 60
    return "\r\n".join(lines) + "\r\n"


def message(subject):
    return (
        "From: s@remote.test\r\nTo: %s\r\nSubject: %s\r\nMessage-ID: %s\r\n\r\n%s"
        % (USER, subject, subject.replace(">", "@remote.test>"), body(subject))
    )


def intact(raw, subject):
    raw = raw.decode("utf-8", "replace")
    head, _, rest = raw.partition("\r\n\r\n")
    return ("\r\nSubject: %s\r\n" % subject) in ("\r\n" + head + "\r\n") and rest == body(subject)


class Gone(Exception):
    """The server is not there any more."""


def smtp_worker(round_, port, thread, until):
    i = 0
    failures = 0
    while time.time() < until and failures < 20:
        try:
            s = smtplib.SMTP(HOST, port, timeout=10)
        except OSError:
            return
        try:
            while time.time() < until:
                subject = "<pc-%d-%d-%d>" % (round_, thread, i)
                i += 1
                say("TRY SMTP", subject)
                s.sendmail("s@remote.test", [USER], message(subject))
                say("ACK SMTP", subject)
            s.quit()
            return
        except Exception:
            failures += 1
            time.sleep(0.05)


def fetch_items(fetched):
    """(metadata, literal) per message of an imaplib FETCH answer: the metadata joins
    what came before the literal and what came after it (FLAGS may be either side)."""
    out = []
    for item in fetched:
        if isinstance(item, tuple):
            out.append([item[0], item[1]])
        elif out and isinstance(item, bytes):
            out[-1][0] += item
    return out


def subjects_of(fetched):
    """(uid, subject) from a FETCH (UID BODY.PEEK[HEADER.FIELDS (SUBJECT)]) answer."""
    out = []
    for meta, literal in fetch_items(fetched):
        uid = re.search(rb"UID (\d+)", meta)
        subject = re.search(rb"Subject: (<[^>]*>)", literal)
        if uid and subject:
            out.append((int(uid.group(1)), subject.group(1).decode()))
    return out


def check(answer):
    typ, data = answer
    if typ != "OK":
        raise Gone("%s %r" % (typ, data))
    return data


def imap_worker(round_, port, until, rng):
    i = 0
    failures = 0
    while time.time() < until and failures < 20:
        try:
            m = imaplib.IMAP4(HOST, port, timeout=10)
        except OSError:
            return
        try:
            check(m.login(USER, PASSWORD))
            while time.time() < until:
                subject = "<pc-%d-a-%d>" % (round_, i)
                i += 1
                say("TRY APPEND", subject)
                check(m.append("Archive", None, None, message(subject).encode()))
                say("ACK APPEND", subject)
                exists = int(check(m.select("INBOX"))[0])
                if exists == 0:
                    continue
                fetched = check(
                    m.fetch("%d:*" % max(1, exists - 40), "(UID BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
                )
                mine = [(u, s) for u, s in subjects_of(fetched) if s.split("-")[2] in ("0", "1")]
                if len(mine) < 2:
                    continue
                (flag_uid, flag_subject), (del_uid, del_subject) = rng.sample(mine, 2)
                check(m.uid("STORE", str(flag_uid), "+FLAGS", "(\\Flagged)"))
                say("ACK FLAG", flag_subject)
                say("TRY DEL", del_subject)
                check(m.uid("STORE", str(del_uid), "+FLAGS", "(\\Deleted)"))
                check(m.expunge())
                say("ACK DEL", del_subject)
            m.logout()
            return
        except Exception:
            failures += 1
            time.sleep(0.05)


def pop3_worker(port, until, rng):
    failures = 0
    while time.time() < until and failures < 20:
        try:
            p = poplib.POP3(HOST, port, timeout=10)
        except OSError:
            return
        try:
            p.user(USER)
            p.pass_(PASSWORD)
            count = p.stat()[0]
            targets = []
            for n in range(max(1, count - 30), count + 1):
                for line in p.top(n, 0)[1]:
                    if line.startswith(b"Subject: "):
                        subject = line[9:].decode()
                        if subject.split("-")[2] == "2":
                            targets.append((n, subject))
            chosen = rng.sample(targets, min(2, len(targets)))
            for n, subject in chosen:
                say("TRY DEL", subject)
                p.dele(n)
            p.quit()
            for n, subject in chosen:
                say("ACK DEL", subject)
            failures = 0
            time.sleep(0.1)
        except Exception:
            failures += 1
            time.sleep(0.05)


def load(round_, smtp, imap, pop3, seconds, seed):
    rng = random.Random(seed)
    until = time.time() + seconds
    threads = [threading.Thread(target=smtp_worker, args=(round_, smtp, t, until)) for t in range(3)]
    threads.append(threading.Thread(target=imap_worker, args=(round_, imap, until, random.Random(rng.random()))))
    threads.append(threading.Thread(target=pop3_worker, args=(pop3, until, random.Random(rng.random()))))
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def dump(imap, min_inbox, min_archive):
    m = imaplib.IMAP4(HOST, imap, timeout=120)
    check(m.login(USER, PASSWORD))
    for folder, min_uid in (("INBOX", min_inbox), ("Archive", min_archive)):
        exists = int(check(m.select(folder, readonly=True))[0])
        validity = m.response("UIDVALIDITY")[1][0]
        print("VALIDITY", folder, validity.decode())
        if exists == 0:
            continue
        fetched = check(m.fetch("1:*", "(UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
        flags = {}
        for meta, _ in fetch_items(fetched):
            uid = re.search(rb"UID (\d+)", meta)
            found = re.search(rb"FLAGS \(([^)]*)\)", meta)
            if uid and found:
                flags[int(uid.group(1))] = found.group(1).decode().replace(" ", ",") or "-"
        for uid, subject in subjects_of(fetched):
            state = "-"
            if uid > min_uid:
                raw = check(m.uid("FETCH", str(uid), "(BODY.PEEK[])"))
                state = "intact" if intact(raw[0][1], subject) else "damaged"
            print("MSG", folder, uid, subject, flags.get(uid, "-"), state)
    m.logout()


if __name__ == "__main__":
    if sys.argv[1] == "load":
        load(*(int(a) for a in sys.argv[2:6]), float(sys.argv[6]), int(sys.argv[7]))
    elif sys.argv[1] == "dump":
        dump(*(int(a) for a in sys.argv[2:5]))
    else:
        sys.exit("usage: powercut.py load|dump ...")
