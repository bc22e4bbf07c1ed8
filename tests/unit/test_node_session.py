"""NodeSession against a real SSH server in-process: commands, pool, host keys, drops, hangs, silence."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from labyrinth_tui.nodes.connect import HostKeyQuestion, TcpConnector
from labyrinth_tui.nodes.errors import (
    CommandFailed,
    ConnectionLost,
    HostKeyRejected,
    NodeTimeout,
    NodeUnreachable,
)
from labyrinth_tui.nodes.session import NodeSession
from tests.fakes.ssh_server import FakeNode


@pytest.fixture
async def fake(tmp_path: Path) -> AsyncIterator[FakeNode]:
    node = await FakeNode(tmp_path).start()
    try:
        yield node
    finally:
        await node.close()


def connector(fake: FakeNode, tmp_path: Path, *, trust: bool = True, **kw: object) -> TcpConnector:
    known = tmp_path / "known_hosts"
    if trust and not known.exists():
        known.write_text(fake.known_hosts_line)
    config = tmp_path / "ssh_config"
    config.touch()  # an empty config: the tests must not depend on the user's ~/.ssh/config
    return TcpConnector(
        "127.0.0.1",
        fake.port,
        username="tester",
        client_keys=[str(fake.client_key_path)],
        known_hosts_path=known,
        config_paths=[str(config)],
        **kw,  # type: ignore[arg-type]
    )


async def test_run_returns_output_and_exit_status(fake: FakeNode, tmp_path: Path) -> None:
    async with NodeSession("node-1", connector(fake, tmp_path)) as node:
        result = await node.run(["echo", "hello", "a b"])
        assert (result.exit_status, result.stdout, result.argv) == (
            0,
            "hello a b\n",
            ("echo", "hello", "a b"),
        )
        assert fake.commands[-1] == "echo hello 'a b'"  # one quoted word on the wire
        assert (await node.run(["cat"], input="to stdin\n")).stdout == "to stdin\n"
        failed = await node.run(["fail", "3"], check=False)
        assert failed.exit_status == 3 and "failing" in failed.stderr
        with pytest.raises(CommandFailed) as info:
            await node.run(["fail", "4"])
        assert info.value.node == "node-1" and info.value.exit_status == 4
        assert "exited 4" in str(info.value) and "failing as asked" in str(info.value)


async def test_a_command_that_hangs_times_out(fake: FakeNode, tmp_path: Path) -> None:
    async with NodeSession("node-1", connector(fake, tmp_path)) as node:
        started = time.monotonic()
        with pytest.raises(NodeTimeout) as info:
            await node.run(["hang"], timeout=0.5)
        assert 0.5 <= time.monotonic() - started < 5
        assert "node-1" in str(info.value) and "0.5 s" in str(info.value)
        # the hung command held a session slot; its connection was retired, so the slot is free again
        await fake.wait_until(lambda: fake.open_sessions == 0)
        assert (await node.run(["echo", "still", "usable"])).stdout == "still usable\n"
        assert fake.connections == 2


async def test_drop_mid_command_is_connection_lost_and_the_next_command_reconnects(
    fake: FakeNode, tmp_path: Path
) -> None:
    async with NodeSession("node-2", connector(fake, tmp_path)) as node:
        with pytest.raises(ConnectionLost) as info:
            await node.run(["drop"], timeout=10)
        assert info.value.node == "node-2"
        assert (await node.run(["echo", "back"])).stdout == "back\n"
        assert node.connections_opened == 2 and fake.connections == 2


async def test_more_channels_than_max_sessions_all_succeed(fake: FakeNode, tmp_path: Path) -> None:
    async with NodeSession("node-1", connector(fake, tmp_path)) as node:
        assert node.open_connections == 1
        runs = [asyncio.create_task(node.run(["hold"])) for _ in range(20)]
        await fake.wait_until(lambda: fake.open_sessions == 20)  # all 20 at once, none queued
        fake.release()
        results = await asyncio.gather(*runs)
        assert [r.stdout for r in results] == ["released\n"] * 20
        assert fake.refused_sessions == 0
        assert fake.peak_sessions_per_connection <= 8 < fake.max_sessions
        assert fake.connections == 3  # 8 + 8 + 4: a second connection only when the first was full


async def test_a_node_allowing_fewer_sessions_is_learned_not_failed(tmp_path: Path) -> None:
    fake = await FakeNode(tmp_path, max_sessions=3).start()
    try:
        async with NodeSession("small", connector(fake, tmp_path)) as node:
            runs = [asyncio.create_task(node.run(["hold"])) for _ in range(6)]
            await fake.wait_until(lambda: fake.open_sessions == 6)
            fake.release()
            assert len(await asyncio.gather(*runs)) == 6
            assert fake.refused_sessions >= 1 and fake.peak_sessions_per_connection == 3
    finally:
        await fake.close()


async def test_unknown_host_key_is_asked_once_then_remembered(fake: FakeNode, tmp_path: Path) -> None:
    questions: list[HostKeyQuestion] = []

    async def ask(question: HostKeyQuestion) -> bool:
        questions.append(question)
        await asyncio.sleep(0.05)  # why: an answer takes time; concurrent connections must wait for it
        return True

    known = tmp_path / "known_hosts"
    known.write_text("# nothing yet")  # no final newline: the appended line must still be its own
    async with NodeSession("cloud-1", connector(fake, tmp_path, trust=False, ask_host_key=ask)) as node:
        runs = [asyncio.create_task(node.run(["hold"])) for _ in range(12)]  # two connections
        await fake.wait_until(lambda: fake.open_sessions == 12)
        fake.release()
        await asyncio.gather(*runs)
    assert len(questions) == 1
    expected = fake.host_key.convert_to_public().get_fingerprint("sha256")
    assert (questions[0].node, questions[0].port, questions[0].fingerprint) == (
        "cloud-1",
        fake.port,
        expected,
    )
    assert known.read_text().splitlines() == ["# nothing yet", fake.known_hosts_line.strip()]
    # a new connector reading the same known_hosts does not ask again
    async with NodeSession("cloud-1", connector(fake, tmp_path, trust=False, ask_host_key=ask)) as node:
        await node.run(["echo", "x"])
    assert len(questions) == 1


async def test_unknown_host_key_refused_or_unasked_is_rejected(fake: FakeNode, tmp_path: Path) -> None:
    asked = 0

    async def refuse(question: HostKeyQuestion) -> bool:
        nonlocal asked
        asked += 1
        return False

    conn = connector(fake, tmp_path, trust=False, ask_host_key=refuse)
    for _ in range(2):
        with pytest.raises(HostKeyRejected, match="refused"):
            await NodeSession("cloud-1", conn).run(["echo"])
    assert asked == 1
    assert (
        not (tmp_path / "known_hosts").exists()
        or fake.known_hosts_line not in (tmp_path / "known_hosts").read_text()
    )
    silent = connector(fake, tmp_path, trust=False)  # no one to ask: refused, never accepted
    with pytest.raises(HostKeyRejected, match="no one to ask"):
        await NodeSession("cloud-1", silent).run(["echo"])


async def test_changed_host_key_is_refused_without_asking(fake: FakeNode, tmp_path: Path) -> None:
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key("openssh").decode().split()[:2]
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{fake.port} {' '.join(other)}\n")
    asked: list[HostKeyQuestion] = []

    async def ask(question: HostKeyQuestion) -> bool:
        asked.append(question)
        return True

    session = NodeSession("cloud-2", connector(fake, tmp_path, trust=False, ask_host_key=ask))
    with pytest.raises(HostKeyRejected, match="CHANGED") as info:
        await session.run(["echo"])
    assert info.value.node == "cloud-2" and "ssh-keygen -R" in info.value.reason
    assert asked == [] and fake.commands == []


async def test_keepalive_notices_a_silent_node(fake: FakeNode, tmp_path: Path) -> None:
    session = NodeSession(
        "node-1", connector(fake, tmp_path), keepalive_interval=0.2, keepalive_count_max=2, connect_attempts=1
    )
    async with session as node:
        hanging = asyncio.create_task(node.run(["hang"], timeout=None))
        await fake.wait_until(lambda: fake.open_sessions == 1)
        fake.go_silent()
        started = time.monotonic()
        with pytest.raises(ConnectionLost) as info:
            await asyncio.wait_for(hanging, 10)
        assert time.monotonic() - started < 2.0  # 0.2 s × 3 unanswered, not the 10 s guard
        assert "keepalive" in str(info.value)


def test_default_keepalive_notices_a_dead_node_within_15_seconds(tmp_path: Path) -> None:
    session = NodeSession("n", TcpConnector("127.0.0.1", 1, known_hosts_path=tmp_path / "kh"))
    options = session._options
    assert options["keepalive_interval"] * (options["keepalive_count_max"] + 1) <= 15


async def test_unreachable_node_is_a_typed_error_after_retries(tmp_path: Path) -> None:
    import socket

    with socket.socket() as placeholder:  # a port nobody listens on: bound, never listening
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
        conn = TcpConnector("127.0.0.1", port, username="x", known_hosts_path=tmp_path / "kh")
        session = NodeSession("node-9", conn, connect_attempts=3, backoff=0.05)
        started = time.monotonic()
        with pytest.raises(NodeUnreachable) as info:
            await session.run(["echo"])
    assert info.value.node == "node-9" and "refused" in info.value.reason.lower()
    assert time.monotonic() - started >= 0.05 + 0.1  # two backoffs between three attempts


async def test_stream_lines_then_stop_signals_the_process_group(fake: FakeNode, tmp_path: Path) -> None:
    async with NodeSession("node-1", connector(fake, tmp_path)) as node:
        async with node.stream(["echo", "one line"]) as lines:
            assert lines.pgid == fake.pgid
            assert [line async for line in lines] == ["one line"]
        assert lines.exit_status == 0 and lines.stop_problem is None
        assert fake.ended_groups == [fake.pgid]  # leftovers of the group are ended too
        await fake.wait_until(lambda: fake.open_sessions == 0)


async def test_stream_dropped_mid_way_is_connection_lost(fake: FakeNode, tmp_path: Path) -> None:
    async with NodeSession("node-2", connector(fake, tmp_path)) as node:
        with pytest.raises(ConnectionLost) as info:
            async with node.stream(["drop"]) as lines:
                assert await anext(lines) == "partial output"
                await anext(lines)
        assert info.value.node == "node-2"
        # without a pty the remote command outlives the connection: stop() reconnects to end its group
        assert fake.ended_groups == [fake.pgid] and fake.connections == 2
        assert lines.stop_problem is None


async def test_stream_past_its_timeout_is_stopped(fake: FakeNode, tmp_path: Path) -> None:
    async with NodeSession("node-1", connector(fake, tmp_path)) as node:
        with pytest.raises(NodeTimeout, match=r"0\.3 s"):
            async with node.stream(["hang"], timeout=0.3) as lines:
                async for _ in lines:
                    pass
        assert fake.ended_groups == [fake.pgid]
