"""PodExec (`kubectl exec` over the API's WebSocket channels) and the article's nc server/client exchange."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import stream as ws_stream

from labyrinth_tui.cloud.kube.client import KubeClient, api_message, one_line
from labyrinth_tui.cloud.kube.errors import ExecFailed, ExecForbidden, KubeUnreachable

STDOUT: Final = 1
STDERR: Final = 2
# the article's exchange: `nc -l 0.0.0.0 9999` in the wrk-2 pod, `nc node-wrk-2-ubuntu24.wrk-2 9999` in wrk-1
NC_PORT: Final = 9999
NC_TARGET: Final = "node-wrk-2-ubuntu24.wrk-2"
NC_MESSAGE: Final = "asdfasdfasdfasd"
# -v makes ncat say "Ncat: Listening on 0.0.0.0:9999" on stderr: proof the server is up before the client runs
NC_SERVER_ARGV: Final = ("nc", "-v", "-l", "0.0.0.0", str(NC_PORT))
POLL: Final = 0.05
APP_GRACE: Final = 3.0  # s an application may keep the connection before we end the client
DELIVERY_GRACE: Final = 3.0  # s a server's output may trail the client's end


def _refusal(exc: ApiException) -> tuple[int, str]:
    """(HTTP status, the API's message) of a refused exec. The WebSocket client reports a refused upgrade
    as status 0 with reason "Handshake status 403 Forbidden -+-+- {headers} -+-+- {body}"."""
    reason = str(exc.reason or "")
    match = re.match(r"Handshake status (\d{3})", reason)
    if not match:
        return int(exc.status or 0), api_message(exc)
    body = reason.rsplit(" -+-+- ", 1)[-1]
    try:
        message = json.loads(body).get("message") or body
    except (ValueError, AttributeError):
        message = body
    return int(match.group(1)), one_line(str(message))


class PodExec:
    """A command running in a pod; its stdin, stdout and stderr are the exec WebSocket's channels.

    The WebSocket client is blocking: every touch of it runs in a thread, one at a time.
    """

    def __init__(self, ws: Any, namespace: str, pod: str, argv: Sequence[str]) -> None:
        self._ws = ws
        self.namespace = namespace
        self.pod = pod
        self.argv = tuple(argv)
        self.stdout = ""
        self.stderr = ""
        self._lock = threading.Lock()

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.pod}: `{' '.join(self.argv)}`"

    @classmethod
    async def start(
        cls, kube: KubeClient, namespace: str, pod: str, argv: Sequence[str], *, stdin: bool = True
    ) -> PodExec:
        def connect() -> Any:
            # an ApiClient of its own: while it connects, stream() swaps its client's call_api for a
            # WebSocket one, and a REST call on a shared client from another thread at that moment went
            # out as a WebSocket handshake ("list pods …: Handshake status 200 OK" with the whole
            # response), seen when the journey read Cilium's service map through the stub API
            api: Any = k8s.ApiClient(kube.api.configuration)  # untyped in the library
            try:
                return ws_stream(
                    k8s.CoreV1Api(api).connect_get_namespaced_pod_exec,
                    pod,
                    namespace,
                    command=list(argv),
                    stdin=stdin,
                    stdout=True,
                    stderr=True,
                    tty=False,
                    _preload_content=False,
                )
            finally:
                api.close()

        try:
            ws = await asyncio.to_thread(connect)
        except ApiException as exc:
            status, said = _refusal(exc)
            if status == 403:
                raise ExecForbidden(
                    f"exec forbidden: create on pods/exec in {namespace} (pod {pod}); the API said: {said}"
                ) from None
            raise ExecFailed(f"{namespace}/{pod}: exec of `{argv[0]}` refused: {said}") from None
        except OSError as exc:
            raise KubeUnreachable(f"{namespace}/{pod}: exec: {exc}") from None
        return cls(ws, namespace, pod, argv)

    def _pump(self, timeout: float) -> bool:
        """In a thread: take what arrived (waiting up to `timeout`); False once the stream is closed."""
        with self._lock:
            if not self._ws.is_open():
                return False
            self._ws.update(timeout=timeout)
            self.stdout += self._ws.read_channel(STDOUT)
            self.stderr += self._ws.read_channel(STDERR)
            return bool(self._ws.is_open())

    async def poll(self, timeout: float = 0.0) -> bool:
        """Take what arrived (waiting up to `timeout` s); False once the command's stream has ended."""
        return await asyncio.to_thread(self._pump, timeout)

    async def write(self, text: str) -> None:
        def send() -> None:
            with self._lock:
                self._ws.write_stdin(text)

        await asyncio.to_thread(send)

    async def close_stdin(self) -> bool:
        """End the command's stdin (v5 protocol); False when the server only speaks v4 (no such signal)."""

        def close() -> bool:
            with self._lock:
                if self._ws.subprotocol != "v5.channel.k8s.io":
                    return False
                self._ws.close_channel(0)
                return True

        return await asyncio.to_thread(close)

    async def read_until(self, seen: Callable[[PodExec], bool], timeout: float, what: str) -> None:
        """Read until `seen(self)` holds; ExecFailed (with what the command said) after `timeout` s."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not seen(self):
            left = deadline - loop.time()
            if left <= 0:
                raise ExecFailed(f"{self.where}: no {what} after {timeout:g} s{self._said()}")
            if not await asyncio.to_thread(self._pump, min(POLL * 4, left)) and not seen(self):
                raise ExecFailed(f"{self.where} ended before {what} (exit {self.returncode}){self._said()}")

    def _said(self) -> str:
        text = (self.stderr or self.stdout).strip()
        return f"; it said: {text[-300:]}" if text else ""

    @property
    def returncode(self) -> int | None:
        """The command's exit status once its stream ended (from the API's status channel)."""
        with self._lock:
            if self._ws.is_open():
                return None
            try:
                return int(self._ws.returncode)
            except (TypeError, ValueError, KeyError, IndexError):
                return None

    async def wait(self, timeout: float) -> int | None:
        """Read until the command ends; its exit status (None if it still runs after `timeout` s)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while await asyncio.to_thread(self._pump, min(POLL * 4, max(0.0, deadline - loop.time()))):
            if loop.time() >= deadline:
                return None
        return self.returncode

    async def close(self) -> None:
        def close() -> None:
            with self._lock:
                self._ws.close()

        await asyncio.to_thread(close)


async def _delivered(listener: PodExec, sender: PodExec, message: str, timeout: float) -> None:
    """Wait for `message` at the server; a client that ends first (refused, no such name) says why."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while message not in listener.stdout:
        if loop.time() >= deadline:
            raise ExecFailed(
                f"{listener.where}: no message from the client after {timeout:g} s{sender._said()}"
            )
        server_open = await listener.poll(POLL)
        client_open = await sender.poll()
        if message in listener.stdout:
            return
        if not client_open:
            await listener.poll(POLL)  # what the client sent may still be on its way
            if message not in listener.stdout:
                why = f"exit {sender.returncode}{sender._said()}"
                raise ExecFailed(f"{sender.where} ended before the server got the message ({why})")
        elif not server_open:
            raise ExecFailed(f"{listener.where} ended before the message came (exit {listener.returncode})")


async def _late_arrival(listeners: Sequence[PodExec], message: str, grace: float) -> int:
    """After the client ended: which listener shows `message` within `grace` s (-1: none). The client's exit
    comes over its own WebSocket and can overtake what the server printed, on a busy machine by far."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    open_ = list(listeners)
    while open_ and loop.time() < deadline:
        for listener in list(open_):
            if not await listener.poll(POLL / len(listeners)):
                open_.remove(listener)  # it ended: what it printed is all there is
            if message in listener.stdout:
                return listeners.index(listener)
    return next((i for i, x in enumerate(listeners) if message in x.stdout), -1)


@dataclass(frozen=True, slots=True)
class NcExchange:
    """What the article's nc pair did: the client sent `sent`, the server printed `received`."""

    server: str  # namespace/pod
    client: str
    target: str
    sent: str
    received: str
    client_exit: int | None

    @property
    def delivered(self) -> bool:
        return self.sent in self.received


async def nc_exchange(
    kube: KubeClient,
    server: tuple[str, str],
    client: tuple[str, str],
    *,
    message: str = NC_MESSAGE,
    target: str = NC_TARGET,
    timeout: float = 30.0,
) -> NcExchange:
    """The article's journey traffic: nc server in pod `server` (ns, name), nc client in `client` sending."""
    if not message or "\n" in message:
        raise ValueError("the message is one non-empty line")
    listener = await PodExec.start(kube, *server, NC_SERVER_ARGV)
    try:
        await listener.read_until(lambda p: "Listening on" in p.stderr, timeout, "'Listening on' from nc")
        sender = await PodExec.start(kube, *client, ["nc", target, str(NC_PORT)])
        try:
            await sender.write(message + "\n")
            # ncat sends FIN when its stdin ends; without v5 (no way to end stdin alone) closing the
            # WebSocket below does the same, and the client's exit status is not known
            closed = await sender.close_stdin()
            await _delivered(listener, sender, message, timeout)
            client_exit = await sender.wait(timeout=min(5.0, timeout)) if closed else None
        finally:
            await sender.close()
    finally:
        await listener.close()
    return NcExchange(
        server="/".join(server),
        client="/".join(client),
        target=target,
        sent=message,
        received=listener.stdout,
        client_exit=client_exit,
    )


async def journey_exchange(
    kube: KubeClient,
    servers: Sequence[tuple[str, str]],
    client: tuple[str, str],
    *,
    target: str,
    port: int,
    payload: str,
    timeout: float = 30.0,
    proto: str = "tcp",
    server_argv: Sequence[Sequence[str]] | None = None,
    client_argv: Sequence[str] | None = None,
) -> tuple[str, int]:
    """A listener in every server pod (a service's backends: any may be chosen), the client in its pod
    sending `payload` to `target`:`port`; returns the line a server printed and that server's index
    (-1: none). The argv default to nc's (`nc -v -l 0.0.0.0 PORT`, `nc TARGET PORT`); each listener must
    say "Listening on" on stderr once it listens."""
    message = payload.rstrip("\n")
    if not message or "\n" in message:
        raise ValueError("the payload is one non-empty line")
    if server_argv is None:
        server_argv = [("nc", "-v", "-l", "0.0.0.0", str(port))] * len(servers)
    listeners: list[PodExec] = []
    try:
        for (namespace, pod), argv in zip(servers, server_argv, strict=True):
            listeners.append(await PodExec.start(kube, namespace, pod, argv))
        for listener in listeners:
            await listener.read_until(_listening, timeout, "'Listening on' from the server")
        sender = await PodExec.start(kube, *client, client_argv or ["nc", target, str(port)])
        try:
            await sender.write(message + "\n")
            await sender.close_stdin()
            if not listeners:  # the target's own application listens: the client's end is all there is
                code = await sender.wait(APP_GRACE)
                if code not in (0, None):
                    raise ExecFailed(f"{sender.where} failed (exit {code}){sender._said()}")
                return "", -1
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while loop.time() < deadline:
                for i, listener in enumerate(listeners):
                    await listener.poll(POLL / len(listeners))
                    if message in listener.stdout:
                        return listener.stdout.splitlines()[0] + "\n", i
                if not await sender.poll() and all(message not in x.stdout for x in listeners):
                    hit = await _late_arrival(listeners, message, min(DELIVERY_GRACE, timeout))
                    if hit >= 0:
                        return listeners[hit].stdout.splitlines()[0] + "\n", hit
                    why = f"exit {sender.returncode}{sender._said()}"
                    raise ExecFailed(f"{sender.where} ended before a server got the message ({why})")
            return "", -1
        finally:
            await sender.close()
    finally:
        await asyncio.gather(*(x.close() for x in listeners), return_exceptions=True)


def _listening(listener: PodExec) -> bool:
    return "listening on" in listener.stderr.lower()  # ncat, OpenBSD nc, busybox nc, our python3
