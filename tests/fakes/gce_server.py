"""FakeGce: a compute/v1 REST server on 127.0.0.1 that the real google-cloud-compute client talks to.

    with FakeGce() as gce:
        api = GceApi("test-project", "us-east4", "us-east4-b", endpoint=gce.endpoint,
                     credentials=AnonymousCredentials())

Endpoints: networks, firewalls (global); subnetworks (regional); instances, disks (zonal) — list, get,
insert, delete — and global/regional/zonal operations (get, wait). State, latency and faults live in
FakeCompute (gce.model); every request received is recorded there, body included.
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.gce_model import SCOPE, ApiError, FakeCompute, Fault, Recorded

__all__ = ["FakeGce", "Fault"]
PATH_RE = re.compile(r"/compute/v1/projects/([^/]+)/(.*)")
UNAVAILABLE = ApiError(503, "backendError", "Service temporarily unavailable; please retry")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    model: FakeCompute


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the model records every request

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        model = self.server.model
        delay = 0.0
        try:
            body = json.loads(raw) if raw else None
            with model.cond:
                model.requests.append(Recorded(self.command, url.path, query, body))
            status, payload, delay = self._route(model, url.path, query, body)
        except ApiError as e:
            status, payload = e.code, e.body()
        except (KeyError, ValueError, TypeError, IndexError) as e:
            status, payload = 400, ApiError(400, "invalid", f"Invalid request: {e!r}").body()
        if delay:
            time.sleep(delay)  # why: the hang fault — acted on, answered too late for the client
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting (hang): what it missed is in model.requests

    def _route(
        self, model: FakeCompute, path: str, query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, Any], float]:
        match = PATH_RE.fullmatch(path)
        if match is None:
            raise ApiError(404, "notFound", f"no such endpoint: {path}")
        project, rest = match.groups()
        parts = rest.split("/")
        if parts[0] == "global":
            scope, location, tail = "global", "global", parts[1:]
        elif parts[0] in ("regions", "zones") and len(parts) > 2:
            scope, location, tail = parts[0], parts[1], parts[2:]
        else:
            raise ApiError(404, "notFound", f"no such endpoint: {path}")
        method = self.command
        if tail[0] == "operations" and len(tail) in (2, 3):
            if len(tail) == 3 and tail[2] == "wait" and method == "POST":
                return 200, model.wait_op(tail[1]), 0.0
            if len(tail) == 2 and method == "GET":
                with model.cond:
                    return 200, model.op_json(model.find_op(tail[1])), 0.0
            raise ApiError(404, "notFound", f"no such endpoint: {method} {path}")
        collection = tail[0]
        if SCOPE.get(collection) != scope or len(tail) > 2:
            raise ApiError(404, "notFound", f"no such endpoint: {path}")
        name = tail[1] if len(tail) == 2 else ""
        with model.cond:
            if method == "GET" and not name:
                kind = f"compute#{collection[:-1]}List"
                return 200, {"kind": kind, "id": path, "items": model.list(collection, location)}, 0.0
            if method == "GET":
                return 200, model.get(collection, location, name), 0.0
            if method == "POST" and not name:
                op = model.insert(project, collection, location, body or {}, query.get("requestId", ""))
                verb, target = "insert", str((body or {}).get("name", ""))
            elif method == "DELETE" and name:
                op = model.delete(project, collection, location, name, query.get("requestId", ""))
                verb, target = "delete", name
            else:
                raise ApiError(405, "invalid", f"{method} {path} is not supported")
            fault = model.take_fault(verb, collection, target, {"unavailable", "hang"})
            if fault is not None and fault.kind == "unavailable":
                raise UNAVAILABLE
            model.settle()
            return 200, model.op_json(op), fault.seconds if fault is not None else 0.0


class FakeGce:
    """The server and its model; a context manager that starts and stops it (port chosen by the OS)."""

    def __init__(self, project: str = "test-project") -> None:
        self.project = project
        self.model = FakeCompute()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeGce:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.model = self.model
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-gce", daemon=True
        )
        self._thread.start()
        return self

    @property
    def endpoint(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeGce:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
