"""A stand-in for wazo-amid + Asterisk: neither can run on the test machines.

It follows wazo-amid's REST request shape for actions (wazo-amid's own tests and
client): ``POST /1.0/action/<Action>``, the wazo-auth token in ``X-Auth-Token``
(anything else: 401 with a JSON error body as wazo-amid returns), the action's
headers as a JSON object (an empty body: 400), and the answer ``200`` with a
JSON list of AMI messages — for ``VoicemailRefresh`` Asterisk's one
``{"Response": "Success", "Message": ...}``. A mailbox listed in ``--error-for``
gets ``{"Response": "Error", ...}`` as Asterisk answers a failed action.
Every request received is appended to a JSON-lines log (method, path, token
accepted or not, body) for the test to read; the token itself is not logged.

Run ``python -m tests.rig.amid_standin --listen 127.0.0.1 --port 9491 --token-file F --log L``
(in a node's network namespace: wazo-amid listens on the node's loopback), or
use :class:`AmidStandin` in-process.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def _handler(token: str, log: Path, error_for: set[str]):
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            authorised = self.headers.get("X-Auth-Token") == token
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = "<not JSON>"
            entry = {"method": "POST", "path": self.path, "authorised": authorised, "body": body}
            with lock, open(log, "a", encoding="utf-8") as stream:
                stream.write(json.dumps(entry) + "\n")
            if not authorised:
                return self._answer(401, {"message": "Unauthorized", "error_id": "unauthorized", "details": {}})
            if not self.path.startswith("/1.0/action/"):
                return self._answer(404, {"message": "Not found", "error_id": "not-found", "details": {}})
            if not isinstance(body, dict):
                return self._answer(400, {"message": "Invalid data", "error_id": "invalid-data", "details": {}})
            action = self.path.rsplit("/", 1)[1]
            if action == "VoicemailRefresh":
                where = f"{body.get('Context')}/{body.get('Mailbox')}"
                if where in error_for:
                    return self._answer(200, [{"Response": "Error", "Message": "Mailbox not found"}])
                return self._answer(200, [{"Response": "Success", "Message": "Mailboxes refreshed"}])
            return self._answer(200, [{"Response": "Error", "Message": "Invalid/unknown command"}])

        def _answer(self, code: int, payload) -> None:
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


class AmidStandin:
    """In-process: ``with AmidStandin(token, log) as amid: amid.url`` (an ephemeral loopback port)."""

    def __init__(self, token: str, log: Path, error_for: set[str] = frozenset(), port: int = 0):
        self.log = log
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(token, log, set(error_for)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/1.0"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def requests(self) -> list[dict]:
        return read_log(self.log)


def read_log(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9491)
    parser.add_argument("--token-file", required=True, type=Path)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--ready", type=Path, help="file created once listening")
    args = parser.parse_args()
    token = args.token_file.read_text(encoding="utf-8").strip()
    server = ThreadingHTTPServer((args.listen, args.port), _handler(token, args.log, set()))
    if args.ready:
        args.ready.write_text(str(os.getpid()))
    server.serve_forever()


if __name__ == "__main__":
    main()
