"""Traffic between two lab pods: `ncat -l` in the server pod, the client by service name (ip netns exec)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence


class TrafficError(RuntimeError):
    """The exchange could not be made: which pod, and why (for a person)."""


async def listening(netns: str, port: int, proto: str = "tcp") -> bool:
    """Whether something listens on `port` (TCP or UDP) inside `netns` (ss run there)."""
    proc = await asyncio.create_subprocess_exec(
        "ip", "netns", "exec", netns, "ss", "-Hln" + ("u" if proto == "udp" else "t"), f"sport = :{port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    out, _ = await proc.communicate()
    return bool(out.strip())


async def _first_line(servers: Sequence[asyncio.subprocess.Process], timeout: float) -> tuple[str, int]:
    """The first line any server read, and which server read it ("", -1 when none did in time)."""
    reads = {asyncio.ensure_future(s.stdout.readline()): i for i, s in enumerate(servers) if s.stdout}
    try:
        pending = set(reads)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while pending and (remaining := deadline - loop.time()) > 0:
            done, pending = await asyncio.wait(
                pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                line = task.result()
                if line:
                    return line.decode(errors="replace"), reads[task]
        return "", -1
    finally:
        for task in reads:
            task.cancel()


async def exchange(
    *,
    client_netns: str,
    client_name: str,
    servers: Sequence[tuple[str, str]],
    target: str,
    port: int,
    payload: str,
    timeout: float,
    proto: str = "tcp",
) -> tuple[str, int]:
    """ncat -l in every server pod (`servers`: (netns, name); stdin kept open: at EOF ncat would close
    first), the client to `target`; returns the line a server read and that server's index."""
    udp = ["-u"] if proto == "udp" else []
    procs: list[asyncio.subprocess.Process] = []
    try:
        for netns, _ in servers:
            srv = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", netns, "ncat", *udp, "-l", "0.0.0.0", str(port),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            procs.append(srv)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for (netns, name), srv in zip(servers, procs, strict=True):
            while not await listening(netns, port, proto):
                if srv.returncode is not None or loop.time() > deadline:
                    raise TrafficError(f"ncat -l did not start listening in {name}")
                await asyncio.sleep(0.02)  # polling the pod's sockets: ncat gives no readiness signal
        # a UDP client has no connection to end: it sends and leaves
        send_only = ["--send-only"] if udp else []
        cli = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", client_netns, "ncat", *udp, *send_only, target, str(port),
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
        return await _first_line(procs, timeout)
    finally:
        for srv in procs:
            if srv.returncode is None:
                srv.kill()  # our own child, by its PID
            await srv.wait()
