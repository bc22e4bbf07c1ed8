"""The Cilium agents' service maps through exec: `cilium-dbg bpf lb list`, or `cilium` on older agents."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Final

from labyrinth_tui.cloud.kube.client import KubeClient
from labyrinth_tui.cloud.kube.errors import KubeError
from labyrinth_tui.cloud.kube.exec import PodExec
from labyrinth_tui.journey.service_map import ServiceMap, service_block

AGENT_NAMESPACE: Final = "kube-system"
AGENT_SELECTOR: Final = "k8s-app=cilium"
# the agent's CLI was renamed cilium-dbg in Cilium 1.15; older agents only have `cilium`
COMMANDS: Final = (("cilium-dbg", "bpf", "lb", "list"), ("cilium", "bpf", "lb", "list"))
TIMEOUT: Final = 15.0


async def _run(kube: KubeClient, pod: str, argv: tuple[str, ...]) -> tuple[int | None, str, str]:
    run = await PodExec.start(kube, AGENT_NAMESPACE, pod, argv, stdin=False)
    try:
        code = await run.wait(TIMEOUT)
    finally:
        await run.close()
    return code, run.stdout, run.stderr


async def _one(kube: KubeClient, node: str, pod: str, address: str) -> ServiceMap:
    agent = f"{AGENT_NAMESPACE}/{pod}"
    tried = []
    for argv in COMMANDS:
        command = " ".join(argv)
        try:
            code, out, err = await _run(kube, pod, argv)
        except KubeError as exc:
            return ServiceMap(node, agent, command, problem=str(exc))
        if code == 0:
            lines = service_block(out, address)
            return ServiceMap(node, agent, command, lines, "" if lines else f"{address} is not in the map")
        said = (err or out).strip().splitlines()
        tried.append(f"{command}: {said[-1] if said else f'exit {code}'}")
    return ServiceMap(node, agent, "", problem="; ".join(tried))


async def service_maps(kube: KubeClient, nodes: Iterable[str], address: str) -> tuple[ServiceMap, ...]:
    """The map each Cilium agent on `nodes` has for `address` (IP:PORT); () where Cilium is not the CNI."""
    agents = await kube.pods(AGENT_NAMESPACE, label_selector=AGENT_SELECTOR)
    on = {a.node: a.name for a in agents if a.running}
    wanted = [n for n in dict.fromkeys(nodes) if n in on]
    return tuple(await asyncio.gather(*(_one(kube, n, on[n], address) for n in wanted)))
