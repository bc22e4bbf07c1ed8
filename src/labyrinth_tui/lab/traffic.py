"""Traffic between two lab pods: `ncat -l` in the server pod, the client by service name (ip netns exec)."""

from __future__ import annotations

import asyncio


class TrafficError(RuntimeError):
    """The exchange could not be made: which pod, and why (for a person)."""


async def listening(netns: str, port: int) -> bool:
    """Whether something listens on TCP `port` inside `netns` (ss run there)."""
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, "ss", "-Hltn", f"sport = :{port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return bool(out.strip())


async def exchange(
    *,
    client_netns: str,
    client_name: str,
    server_netns: str,
    server_name: str,
    target: str,
    port: int,
    payload: str,
    timeout: float,
) -> str:
    """nc -l in the server pod (stdin kept open: at EOF ncat would close first), the client to `target`;
    returns the line the server read."""
    srv = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", server_netns, "ncat", "-l", "0.0.0.0", str(port),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not await listening(server_netns, port):
            if srv.returncode is not None or loop.time() > deadline:
                raise TrafficError(f"ncat -l did not start listening in {server_name}")
            await asyncio.sleep(0.02)  # polling the pod's sockets: ncat gives no readiness signal
        cli = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", client_netns, "ncat", target, str(port),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            _, err = await asyncio.wait_for(cli.communicate(payload.encode()), timeout)
        except TimeoutError:
            cli.kill()
            await cli.wait()
            raise TrafficError(f"the client in {client_name} did not finish in {timeout:g} s") from None
        if cli.returncode != 0:
            raise TrafficError(f"ncat in {client_name} failed: {err.decode().strip()[-200:]}")
        assert srv.stdout is not None
        try:
            line = await asyncio.wait_for(srv.stdout.readline(), timeout)
        except TimeoutError:
            line = b""
        return line.decode(errors="replace")
    finally:
        if srv.returncode is None:
            srv.kill()  # our own child, by its PID
        await srv.wait()
