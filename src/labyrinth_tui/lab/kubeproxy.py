"""kube-proxy's iptables-mode nat rules for the lab's services, named and commented as kube-proxy does."""

from __future__ import annotations

import base64
import hashlib

from labyrinth_tui.lab.spec import LabSpec, PortSpec, ServiceSpec

MASQ_MARK = "0x4000/0x4000"


def _hash16(text: str) -> str:
    # kube-proxy: base32(sha256(servicePortName + protocol [+ endpoint]))[:16]
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def service_port_name(service: ServiceSpec, port: PortSpec) -> str:
    return f"{service.namespace}/{service.name}:{port.name}"


def svc_chain(service: ServiceSpec, port: PortSpec) -> str:
    return "KUBE-SVC-" + _hash16(service_port_name(service, port) + port.protocol.lower())


def sep_chain(service: ServiceSpec, port: PortSpec, endpoint: str) -> str:
    return "KUBE-SEP-" + _hash16(service_port_name(service, port) + port.protocol.lower() + endpoint)


def nat_rules(spec: LabSpec) -> str:
    """The `iptables-restore --noflush` input for one node's nat table (the same on every node)."""
    chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS"]
    rules = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        f"-A KUBE-MARK-MASQ -j MARK --set-xmark {MASQ_MARK}",
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK} -j RETURN",
        "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    service_rules: list[str] = []
    chain_rules: list[str] = []
    for service in spec.services:
        endpoints = spec.endpoints(service)
        for port in service.ports:
            name = service_port_name(service, port)
            proto = port.protocol.lower()
            svc = svc_chain(service, port)
            chains.append(svc)
            match = f"-d {service.cluster_ip}/32 -p {proto}"
            dport = f"-m {proto} --dport {port.port}"
            service_rules.append(
                f'-A KUBE-SERVICES {match} -m comment --comment "{name} cluster IP" {dport} -j {svc}'
            )
            chain_rules.append(
                f'-A {svc} ! -s {spec.cluster_cidr} {match} -m comment --comment "{name} cluster IP" '
                f"{dport} -j KUBE-MARK-MASQ"
            )
            count = len(endpoints)
            for i, pod in enumerate(endpoints):
                endpoint = f"{pod.ip}:{port.target_port}"
                sep = sep_chain(service, port, endpoint)
                chains.append(sep)
                # kube-proxy spreads load with statistic rules on all but the last endpoint
                spread = (
                    f"-m statistic --mode random --probability {1 / (count - i):.11f} "
                    if i < count - 1
                    else ""
                )
                chain_rules.append(f'-A {svc} -m comment --comment "{name} -> {endpoint}" {spread}-j {sep}')
                chain_rules.append(f'-A {sep} -s {pod.ip}/32 -m comment --comment "{name}" -j KUBE-MARK-MASQ')
                chain_rules.append(
                    f'-A {sep} -p {proto} -m comment --comment "{name}" -m {proto} '
                    f"-j DNAT --to-destination {endpoint}"
                )
    service_rules.append(
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last '
        'rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
    )
    lines = ["*nat", *(f":{c} - [0:0]" for c in chains), *rules, *service_rules, *chain_rules, "COMMIT", ""]
    return "\n".join(lines)
