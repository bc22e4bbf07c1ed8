"""Three fake Ubuntu VMs (real SSH, real node scripts, fake system commands) and sessions to them."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from labyrinth_tui.cloud.bootstrap.run import BootstrapNode
from labyrinth_tui.model.progress import Step, StepState
from labyrinth_tui.nodes.connect import TcpConnector
from labyrinth_tui.nodes.session import NodeSession
from tests.fakes.kube_node import FakeVm
from tests.fakes.node_sandbox import ClusterSandbox

T = TypeVar("T")
ARTICLE = (("node-0", "10.168.0.2"), ("node-1", "10.168.0.4"), ("node-2", "10.168.0.5"))


@dataclass
class Vms:
    sandbox: ClusterSandbox
    vms: list[FakeVm]
    tmp: Path

    def __getitem__(self, name: str) -> FakeVm:
        return next(vm for vm in self.vms if vm.name == name)

    def connector(self, vm: FakeVm) -> TcpConnector:
        known = self.tmp / "known_hosts"
        known.write_text("".join(v.known_hosts_line for v in self.vms))
        config = self.tmp / "ssh_config"
        config.touch()  # not the user's ~/.ssh/config
        return TcpConnector(
            "127.0.0.1",
            vm.port,
            username="labyrinth",
            client_keys=[str(vm.client_key_path)],
            known_hosts_path=known,
            config_paths=[str(config)],
        )

    @contextlib.asynccontextmanager
    async def nodes(self) -> AsyncIterator[tuple[BootstrapNode, list[BootstrapNode]]]:
        """node-0 and the workers, each with a NodeSession (one connect attempt: a dead VM fails fast)."""
        async with contextlib.AsyncExitStack() as stack:
            nodes = []
            for vm in self.vms:
                session = NodeSession(vm.name, self.connector(vm), connect_attempts=1, connect_timeout=3)
                await stack.enter_async_context(_closing(session))
                nodes.append(BootstrapNode(vm.name, vm.internal_ip, session))
            yield nodes[0], nodes[1:]

    def tokens(self) -> list[str]:
        path = self.sandbox.shared / "tokens"
        return path.read_text().split() if path.exists() else []

    def ca_hash(self) -> str:
        return (self.sandbox.shared / "ca_hash").read_text().strip()


@contextlib.asynccontextmanager
async def _closing(session: NodeSession) -> AsyncIterator[NodeSession]:
    try:
        yield session
    finally:
        await session.close()


@contextlib.asynccontextmanager
async def fake_vms(tmp: Path) -> AsyncIterator[Vms]:
    sandbox = ClusterSandbox()
    vms: list[FakeVm] = []
    try:
        for name, ip in ARTICLE:
            vms.append(await FakeVm(tmp / name, name, ip, sandbox).start())
        yield Vms(sandbox, vms, tmp)
    finally:
        for vm in vms:
            await vm.close()
        sandbox.close()


def last_states(steps: Sequence[Step]) -> dict[tuple[str, str], StepState]:
    """Each step's last reported state, as the provisioning pane would show it."""
    return {step.key: step.state for step in steps}


class BackgroundLoop:
    """An event loop in a thread of its own, for fakes that must serve while the CLI runs asyncio.run."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fakes-loop", daemon=True)
        self.stack = contextlib.AsyncExitStack()

    def __enter__(self) -> BackgroundLoop:
        self.thread.start()
        return self

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def enter(self, manager: contextlib.AbstractAsyncContextManager[T]) -> T:
        """Enter an async context manager on the background loop; it is left in __exit__."""
        return self.run(self.stack.enter_async_context(manager))

    def __exit__(self, *exc: object) -> None:
        try:
            self.run(self.stack.aclose())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()
