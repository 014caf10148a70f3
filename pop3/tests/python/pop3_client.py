"""A POP3 client for the integration tests, on Python's poplib.

Usage: python3 pop3_client.py PLAN_JSON

PLAN_JSON is an object:
  host, port             where to connect
  mode                   "plain" (default), "stls" (STLS with an unverified context)
                         or "ssl" (implicit TLS, unverified)
  login                  optional {"method": "user" | "plain", "user": ..., "password": ...}
  actions                list of [name, args...]: capa, stat, list, list_one N, uidl,
                         uidl_one N, retr N, top N LINES, dele N, rset, noop, quit,
                         drop (close the socket without QUIT), raw LINE (one command,
                         single-line answer)

Prints a JSON object: {"welcome": ..., "results": [...]} where each result is the
action's answer, or {"error": "-ERR ..."} when the server refused it. Message lines
(retr, top) are returned as one string with CRLF line ends, as the client received
them after removing the byte-stuffing, base64-encoded. A failed login ends the run
with {"login_error": ...}.
"""

import base64
import json
import poplib
import ssl
import sys


def unverified():
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def text(value):
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def lines_to_b64(lines):
    return base64.b64encode(b"".join(line + b"\r\n" for line in lines)).decode()


def run_action(client, action):
    name, args = action[0], action[1:]
    if name == "capa":
        return {key: value for key, value in client.capa().items()}
    if name == "stat":
        return list(client.stat())
    if name == "list":
        return [text(line) for line in client.list()[1]]
    if name == "list_one":
        return text(client.list(args[0]))
    if name == "uidl":
        return [text(line) for line in client.uidl()[1]]
    if name == "uidl_one":
        return text(client.uidl(args[0]))
    if name == "retr":
        response, lines, octets = client.retr(args[0])
        return {"response": text(response), "body": lines_to_b64(lines), "octets": octets}
    if name == "top":
        response, lines, octets = client.top(args[0], args[1])
        return {"response": text(response), "body": lines_to_b64(lines)}
    if name == "dele":
        return text(client.dele(args[0]))
    if name == "rset":
        return text(client.rset())
    if name == "noop":
        return text(client.noop())
    if name == "quit":
        return text(client.quit())
    if name == "drop":
        client.sock.close()
        return "dropped"
    if name == "raw":
        return text(client._shortcmd(args[0]))
    raise ValueError("unknown action " + name)


def login(client, spec):
    if spec["method"] == "user":
        client.user(spec["user"])
        return text(client.pass_(spec["password"]))
    if spec["method"] == "plain":
        message = b"\0" + spec["user"].encode() + b"\0" + spec["password"].encode()
        return text(client._shortcmd("AUTH PLAIN " + base64.b64encode(message).decode()))
    raise ValueError("unknown login method " + spec["method"])


def main():
    plan = json.loads(sys.argv[1])
    mode = plan.get("mode", "plain")
    timeout = plan.get("timeout", 10)
    if mode == "ssl":
        client = poplib.POP3_SSL(plan["host"], plan["port"], timeout=timeout, context=unverified())
    else:
        client = poplib.POP3(plan["host"], plan["port"], timeout=timeout)
    output = {"welcome": text(client.getwelcome()), "results": []}
    if mode == "stls":
        output["stls"] = text(client.stls(unverified()))
    if "login" in plan:
        try:
            output["login"] = login(client, plan["login"])
        except poplib.error_proto as error:
            output["login_error"] = text(error.args[0])
            print(json.dumps(output))
            return
    for action in plan.get("actions", []):
        try:
            output["results"].append(run_action(client, action))
        except poplib.error_proto as error:
            output["results"].append({"error": text(error.args[0])})
    print(json.dumps(output))


if __name__ == "__main__":
    main()
