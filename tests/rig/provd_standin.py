"""A STAND-IN for provd, Wazo's provisioning server — provd itself cannot run here.

It follows the REST facts in ../shared/WAZO-FACTS.md and nothing more:
base path ``/provd``, media type ``application/vnd.proformatique.provd+json``,
``GET /provd/cfg_mgr/configs[?q={json}]`` → ``{"configs": [...]}``,
``GET|PUT|DELETE /provd/cfg_mgr/configs/{id}`` (PUT body ``{"config": {...}}``),
``GET /provd/dev_mgr/devices`` → ``{"devices": [...]}``,
``POST /provd/dev_mgr/synchronize`` with ``{"id": …}`` → 201 with the operation's
``Location``; ``GET`` it for ``{"status": "progress"|"success"|"fail"}``; ``DELETE`` it.

It records every request (method, path with query, JSON body, auth token),
answers 415 to a body without provd's media type, 401 when a token is set and
not given, and fails on demand (see the ``fail_*`` attributes).
"""

from __future__ import annotations

import copy
import json
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MEDIA_TYPE = "application/vnd.proformatique.provd+json"


@dataclass
class Recorded:
    method: str
    path: str
    body: object
    token: str | None


class ProvdStandIn:
    def __init__(self, token: str | None = None, port: int = 0):
        self.token = token
        self.configs: dict[str, dict] = {}
        self.devices: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        #: config id → HTTP status answered to a PUT of that config.
        self.fail_put: dict[str, int] = {}
        #: device ids whose synchronisation ends in "fail".
        self.fail_sync: set[str] = set()
        #: device ids whose synchronize POST is refused (HTTP 404).
        self.refuse_sync: set[str] = set()
        #: how many GETs an operation stays "progress" before it ends.
        self.polls_before_done = 1
        #: most operations in progress at once (for the bounded-parallelism test).
        self.max_in_progress = 0
        self._next_operation = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/provd"

    def start(self) -> ProvdStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_config(self, config: dict) -> None:
        self.configs[config["id"]] = copy.deepcopy(config)

    def changes(self) -> list[Recorded]:
        """The requests that change something (every method but GET)."""
        return [r for r in self.requests if r.method != "GET"]

    # --- the HTTP side ---------------------------------------------------------------

    def _handler(self):
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _answer(self, status: int, body: object = None, headers: dict | None = None) -> None:
                payload = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                if body is not None:
                    self.send_header("Content-Type", MEDIA_TYPE)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                token = self.headers.get("X-Auth-Token")
                with standin.lock:
                    standin.requests.append(Recorded(method, self.path, body, token))
                    if standin.token is not None and token != standin.token:
                        return self._answer(401, {"error": "invalid token"})
                    if raw and self.headers.get("Content-Type") != MEDIA_TYPE:
                        return self._answer(415, {"error": "unsupported media type"})
                    status, answer, headers = standin._route(method, self.path, body)
                self._answer(status, answer, headers)

            def do_GET(self):
                self._handle("GET")

            def do_PUT(self):
                self._handle("PUT")

            def do_POST(self):
                self._handle("POST")

            def do_DELETE(self):
                self._handle("DELETE")

        return Handler

    def _route(self, method: str, raw_path: str, body):
        parts = urllib.parse.urlsplit(raw_path)
        path = [urllib.parse.unquote(p) for p in parts.path.strip("/").split("/")]
        if path[:1] != ["provd"]:
            return 404, {"error": "not found"}, None
        path = path[1:]
        if path == ["cfg_mgr", "configs"] and method == "GET":
            query = urllib.parse.parse_qs(parts.query).get("q")
            wanted = json.loads(query[0]) if query else {}
            found = [c for c in self.configs.values() if all(c.get(k) == v for k, v in wanted.items())]
            return 200, {"configs": copy.deepcopy(found)}, None
        if path[:2] == ["cfg_mgr", "configs"] and len(path) == 3:
            config_id = path[2]
            if config_id not in self.configs:
                return 404, {"error": f"no config {config_id}"}, None
            if method == "GET":
                return 200, {"config": copy.deepcopy(self.configs[config_id])}, None
            if method == "PUT":
                if config_id in self.fail_put:
                    return self.fail_put[config_id], {"error": "refused on demand (stand-in)"}, None
                if not isinstance(body, dict) or body.get("config", {}).get("id") != config_id:
                    return 400, {"error": "body must be {'config': {... same id}}"}, None
                self.configs[config_id] = copy.deepcopy(body["config"])
                return 204, None, None
            if method == "DELETE":
                del self.configs[config_id]
                return 204, None, None
        if path == ["dev_mgr", "devices"] and method == "GET":
            return 200, {"devices": copy.deepcopy(list(self.devices.values()))}, None
        if path == ["dev_mgr", "synchronize"] and method == "POST":
            device_id = (body or {}).get("id")
            if device_id not in self.devices or device_id in self.refuse_sync:
                return 404, {"error": f"no device {device_id}"}, None
            self._next_operation += 1
            operation_id = f"op{self._next_operation}"
            self.operations[operation_id] = {"device": device_id, "polls": 0}
            in_progress = len(self.operations)
            self.max_in_progress = max(self.max_in_progress, in_progress)
            return 201, None, {"Location": f"/provd/dev_mgr/synchronize/{operation_id}"}
        if path[:2] == ["dev_mgr", "synchronize"] and len(path) == 3:
            operation = self.operations.get(path[2])
            if operation is None:
                return 404, {"error": "no such operation"}, None
            if method == "DELETE":
                del self.operations[path[2]]
                return 204, None, None
            if method == "GET":
                operation["polls"] += 1
                if operation["polls"] <= self.polls_before_done:
                    return 200, {"status": "progress"}, None
                return 200, {"status": "fail" if operation["device"] in self.fail_sync else "success"}, None
        return 404, {"error": "not found"}, None
