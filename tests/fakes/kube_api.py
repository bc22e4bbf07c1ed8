"""KubeApiStub: a Kubernetes API server on 127.0.0.1 (HTTPS, client certificates) for the real client.

    async with KubeApiStub(tmp_path) as api:
        kube = KubeClient.from_config(api.admin_conf(), server=api.url, tls_server_name="kubernetes")

Endpoints: namespaces (list, get, create), nodes (list), pods (list, all or by namespace, labelSelector),
services (list, create, get, patch), deployments (create, get, patch), endpointslices (list), and pod exec
over WebSocket with the v5/v4 channel protocols, where `nc -l` and `nc HOST PORT` meet through the
cluster's DNS and Services (see FakeCluster). Every request is recorded with its content type.

`model=LabCluster(…)` (tests/fakes/kube_lab.py) serves a running lab instead: its exec runs the command
for real inside the pod's network namespace. `forbid_exec={"wrk-1"}` answers exec in those namespaces
with the 403 an RBAC rule without `create` on `pods/exec` gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.kube_model import ApiError, FakeCluster, FakePod, merge
from tests.fakes.kube_tls import ClusterPki

V5, V4 = "v5.channel.k8s.io", "v4.channel.k8s.io"
STDIN, STDOUT, STDERR, STATUS, CLOSE = 0, 1, 2, 3, 255
JSON_MERGE = ("application/merge-patch+json", "application/strategic-merge-patch+json")


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: str
    content_type: str


def _selector(text: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in text.split(",") if "=" in part)


def _list(kind: str, items: list[dict[str, Any]], api_version: str = "v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": "1"}, "items": items}


class _Listener:
    """An `nc -l` waiting in a pod: what a client sends goes to the listener's stdout."""

    def __init__(self, pod: FakePod, out: web.WebSocketResponse) -> None:
        self.pod = pod
        self.out = out
        self.connected = asyncio.Event()
        self.finished = asyncio.Event()


class KubeApiStub:
    def __init__(
        self,
        directory: Path,
        *,
        loopback_san: bool = True,
        v5: bool = True,
        model: Any = None,
        forbid_exec: frozenset[str] | set[str] = frozenset(),
        binaries: frozenset[str] | set[str] = frozenset({"nc"}),
        **cluster: Any,
    ) -> None:
        self.pki = ClusterPki(directory, loopback_san=loopback_san)
        self.cluster: Any = model if model is not None else FakeCluster(**cluster)
        self.forbid_exec = set(forbid_exec)
        self.binaries = set(binaries)  # what the fake pods' image has (FakeCluster only)
        self.requests: list[Recorded] = []
        self.execs: list[tuple[str, str, list[str]]] = []
        # an exec waits for `exec_gate` before its WebSocket is accepted (the client is mid-handshake);
        # `exec_arrived` is set when one comes
        self.exec_gate: asyncio.Event | None = None
        self.exec_arrived = asyncio.Event()
        self.protocols = (V5, V4) if v5 else (V4,)
        self.listeners: dict[tuple[str, int], _Listener] = {}
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def admin_conf(self, server: str | None = None) -> dict[str, Any]:
        return self.pki.admin_conf(server or self.url)

    async def __aenter__(self) -> KubeApiStub:
        app = web.Application(middlewares=[self._record])
        app.add_routes(
            [
                web.get("/api/v1/namespaces", self._namespaces),
                web.post("/api/v1/namespaces", self._create_namespace),
                web.get("/api/v1/namespaces/{ns}", self._namespace),
                web.get("/api/v1/nodes", self._nodes),
                web.get("/api/v1/pods", self._pods),
                web.get("/api/v1/namespaces/{ns}/pods", self._pods),
                web.get("/api/v1/namespaces/{ns}/pods/{name}/exec", self._exec),
                web.get("/api/v1/services", self._services),
                web.post("/api/v1/namespaces/{ns}/services", self._create_service),
                web.get("/api/v1/namespaces/{ns}/services/{name}", self._service),
                web.patch("/api/v1/namespaces/{ns}/services/{name}", self._patch_service),
                web.post("/apis/apps/v1/namespaces/{ns}/deployments", self._create_deployment),
                web.get("/apis/apps/v1/namespaces/{ns}/deployments/{name}", self._deployment),
                web.patch("/apis/apps/v1/namespaces/{ns}/deployments/{name}", self._patch_deployment),
                web.get("/apis/discovery.k8s.io/v1/endpointslices", self._slices),
            ]
        )
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.pki.server_context())
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[attr-defined]
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for listener in self.listeners.values():
            listener.finished.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append(
            Recorded(
                request.method, request.path, request.query_string, request.headers.get("Content-Type", "")
            )
        )
        try:
            return await handler(request)  # type: ignore[no-any-return]
        except ApiError as exc:
            return web.json_response(exc.status(), status=exc.code)

    async def _body(self, request: web.Request, *, patch: bool = False) -> dict[str, Any]:
        kind = request.headers.get("Content-Type", "")
        if patch and kind not in JSON_MERGE:
            # what a real API server says to a map sent as a JSON patch (the client's default type)
            raise ApiError(400, "BadRequest", f"the body of the request was in an unknown format ({kind})")
        body = json.loads(await request.read())
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body is not an object")
        return body

    # --- namespaces, nodes -----------------------------------------------------------------------
    async def _namespaces(self, request: web.Request) -> web.Response:
        items = [self._ns_json(n) for n in sorted(self.cluster.namespaces)]
        return web.json_response(_list("NamespaceList", items))

    def _ns_json(self, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
            "status": {"phase": "Active"},
        }

    async def _namespace(self, request: web.Request) -> web.Response:
        self.cluster.require_namespace(request.match_info["ns"])
        return web.json_response(self._ns_json(request.match_info["ns"]))

    async def _create_namespace(self, request: web.Request) -> web.Response:
        name = (await self._body(request))["metadata"]["name"]
        if name in self.cluster.namespaces:
            raise ApiError(409, "AlreadyExists", f'namespaces "{name}" already exists')
        self.cluster.namespaces.add(name)
        return web.json_response(self._ns_json(name), status=201)

    async def _nodes(self, request: web.Request) -> web.Response:
        return web.json_response(_list("NodeList", self.cluster.nodes_json()))

    # --- pods, services, deployments -------------------------------------------------------------
    async def _pods(self, request: web.Request) -> web.Response:
        ns = request.match_info.get("ns")
        if ns is not None:
            self.cluster.require_namespace(ns)
        items = self.cluster.pods_json(ns, _selector(request.query.get("labelSelector", "")))
        return web.json_response(_list("PodList", items))

    async def _services(self, request: web.Request) -> web.Response:
        items = [self.cluster.service_json(*key) for key in sorted(self.cluster.services)]
        return web.json_response(_list("ServiceList", items))

    async def _create_service(self, request: web.Request) -> web.Response:
        svc = self.cluster.create_service(request.match_info["ns"], await self._body(request))
        return web.json_response(svc, status=201)

    async def _service(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.cluster.service_json(request.match_info["ns"], request.match_info["name"])
        )

    async def _patch_service(self, request: web.Request) -> web.Response:
        ns, name = request.match_info["ns"], request.match_info["name"]
        patch = await self._body(request, patch=True)
        current = self.cluster.service_json(ns, name)
        patch.get("spec", {}).pop("clusterIP", None)  # immutable, and kept
        merged = merge(current, patch)
        self.cluster.services[(ns, name)] = merged
        return web.json_response(merged)

    async def _create_deployment(self, request: web.Request) -> web.Response:
        dep = self.cluster.create_deployment(request.match_info["ns"], await self._body(request))
        return web.json_response(dep, status=201)

    async def _deployment(self, request: web.Request) -> web.Response:
        return web.json_response(
            self.cluster.deployment_json(request.match_info["ns"], request.match_info["name"])
        )

    async def _patch_deployment(self, request: web.Request) -> web.Response:
        patch = await self._body(request, patch=True)
        dep = self.cluster.patch_deployment(request.match_info["ns"], request.match_info["name"], patch)
        return web.json_response(dep)

    async def _slices(self, request: web.Request) -> web.Response:
        return web.json_response(
            _list("EndpointSliceList", self.cluster.endpoint_slices(), "discovery.k8s.io/v1")
        )

    # --- exec --------------------------------------------------------------------------------------
    async def _exec(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["ns"], request.match_info["name"]
        if ns in self.forbid_exec:
            user = "system:serviceaccount:default:viewer"
            raise ApiError(
                403,
                "Forbidden",
                f'pods "{name}" is forbidden: User "{user}" cannot create resource "pods/exec" '
                f'in API group "" in the namespace "{ns}"',
            )
        pod = self.cluster.pod(ns, name)
        if not pod.running:
            raise ApiError(400, "BadRequest", f"pod {name} is not running")
        argv = request.query.getall("command", [])
        self.execs.append((ns, name, argv))
        self.exec_arrived.set()
        if self.exec_gate is not None:
            await self.exec_gate.wait()
        ws = web.WebSocketResponse(protocols=self.protocols)
        await ws.prepare(request)
        try:
            if hasattr(self.cluster, "exec_argv"):
                await self._run(ws, self.cluster.exec_argv(pod, argv))
            elif (
                argv[1:] == ["bpf", "lb", "list"]
                and argv[0] in self.binaries
                and argv[0].startswith("cilium")
            ):
                await self._send(ws, STDOUT, self._lb_list())
                await self._exit(ws, 0)
            elif argv[1:] == ["--version"] and argv[0] in self.binaries:
                await self._send(ws, STDOUT, f"{argv[0]} 1.0\n")
                await self._exit(ws, 0)
            elif argv and argv[0] not in self.binaries:
                why = f'exec: "{argv[0]}": executable file not found in $PATH'
                await self._send(ws, STDERR, f"OCI runtime exec failed: exec failed: {why}: unknown\n")
                await self._exit(ws, 126)
            elif argv[:2] == ["nc", "-v"] and "-l" in argv:
                await self._nc_listen(ws, pod, int(argv[-1]))
            elif argv and argv[0] == "nc" and argv[1:-2] in ([], ["-u"]):  # a `-u` line is met the same way
                await self._nc_connect(ws, pod, argv[-2], int(argv[-1]))
            else:
                why = f'exec: "{argv[0] if argv else ""}": executable file not found in $PATH'
                await self._send(ws, STDERR, f"OCI runtime exec failed: exec failed: {why}: unknown\n")
                await self._exit(ws, 126)
        finally:
            await ws.close()
        return ws

    async def _run(self, ws: web.WebSocketResponse, argv: list[str]) -> None:
        """The command for real: WebSocket stdin to its stdin, its stdout/stderr to theirs, its exit status.

        It runs in a session of its own and is killed (by its PID) when the client closes the WebSocket,
        as the kubelet ends an exec whose connection is gone.
        """
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            await self._send(ws, STDERR, f"OCI runtime exec failed: exec failed: {exc}: unknown\n")
            await self._exit(ws, 126)
            return
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

        async def pump(stream: asyncio.StreamReader, channel: int) -> None:
            while chunk := await stream.read(65536):
                await self._send(ws, channel, chunk.decode(errors="replace"))

        async def feed() -> None:
            assert proc.stdin is not None
            async for msg in ws:
                # the client sends text frames for str writes, binary for bytes
                data = msg.data.encode() if msg.type == WSMsgType.TEXT else msg.data
                if not isinstance(data, bytes):
                    continue
                if data[:2] == bytes([CLOSE, STDIN]):
                    proc.stdin.close()  # v5: the client ended our stdin
                elif data[:1] == bytes([STDIN]) and not proc.stdin.is_closing():
                    proc.stdin.write(data[1:])
                    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                        await proc.stdin.drain()

        pumps = asyncio.gather(pump(proc.stdout, STDOUT), pump(proc.stderr, STDERR))
        fed = asyncio.ensure_future(feed())
        ended = asyncio.ensure_future(proc.wait())
        await asyncio.wait({fed, ended}, return_when=asyncio.FIRST_COMPLETED)
        if not ended.done():  # the client went away: end the command, as the kubelet would
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        code = await ended
        await pumps
        fed.cancel()
        await self._exit(ws, code)

    def _lb_list(self) -> str:
        """A Cilium agent's `bpf lb list` of the fake cluster's services, in its columns."""
        lines = ["SERVICE ADDRESS        BACKEND ADDRESS (REVNAT_ID) (SLOT)"]
        for revnat, key in enumerate(sorted(self.cluster.services), start=1):
            spec = self.cluster.services[key]["spec"]
            for port in spec.get("ports", []):
                address = f"{spec['clusterIP']}:{port['port']}"
                lines.append(f"{address:<22} 0.0.0.0:0 ({revnat}) (0) [ClusterIP, non-routable]")
                for slot, pod in enumerate(self.cluster.backends(*key), start=1):
                    lines.append(f"{'':<22} {pod.ip}:{port['targetPort']} ({revnat}) ({slot})")
        return "\n".join(lines) + "\n"

    async def _send(self, ws: web.WebSocketResponse, channel: int, text: str) -> None:
        with contextlib.suppress(ConnectionResetError):
            await ws.send_bytes(bytes([channel]) + text.encode())

    async def _exit(self, ws: web.WebSocketResponse, code: int) -> None:
        if code == 0:
            status: dict[str, Any] = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": f"command terminated with non-zero exit code: exit status {code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
            }
        await self._send(ws, STATUS, json.dumps(status))

    async def _nc_listen(self, ws: web.WebSocketResponse, pod: FakePod, port: int) -> None:
        listener = _Listener(pod, ws)
        self.listeners[(pod.ip, port)] = listener
        await self._send(ws, STDERR, "Ncat: Version 7.94SVN ( https://nmap.org/ncat )\n")
        await self._send(ws, STDERR, f"Ncat: Listening on 0.0.0.0:{port}\n")
        closed = asyncio.ensure_future(self._until_closed(ws))
        finished = asyncio.ensure_future(listener.finished.wait())
        await asyncio.wait({closed, finished}, return_when=asyncio.FIRST_COMPLETED)
        for task in (closed, finished):
            task.cancel()
        self.listeners.pop((pod.ip, port), None)
        if listener.finished.is_set():
            await self._exit(ws, 0)

    async def _until_closed(self, ws: web.WebSocketResponse) -> None:
        async for _ in ws:
            pass

    async def _nc_connect(self, ws: web.WebSocketResponse, pod: FakePod, host: str, port: int) -> None:
        cluster_ip = self.cluster.resolve(host, pod.namespace)
        if cluster_ip is None:
            await self._send(
                ws,
                STDERR,
                f'Ncat: Could not resolve hostname "{host}": Name or service not known. QUITTING.\n',
            )
            await self._exit(ws, 2)
            return
        service = self.cluster.service_by_ip(cluster_ip)
        backends = self.cluster.backends(*service) if service else []
        listener = next(
            (self.listeners.get((b.ip, port)) for b in backends if (b.ip, port) in self.listeners), None
        )
        if listener is None:
            await self._send(ws, STDERR, "Ncat: Connection refused.\n")
            await self._exit(ws, 1)
            return
        await self._send(listener.out, STDERR, f"Ncat: Connection from {pod.ip}:38430.\n")
        async for msg in ws:
            data = (
                msg.data.encode()
                if msg.type == WSMsgType.TEXT
                else msg.data
                if msg.type == WSMsgType.BINARY
                else b""
            )
            if not data:
                continue
            if data[0] == CLOSE and len(data) > 1 and data[1] == STDIN:
                break  # v5: the client closed our stdin, so nc sends FIN
            if data[0] == STDIN:
                await self._send(listener.out, STDOUT, data[1:].decode())
        listener.finished.set()  # the server's nc saw EOF and exits
        await self._exit(ws, 0)
