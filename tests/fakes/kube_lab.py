"""LabCluster: the stub API's state taken from a running lab — its nodes, pods and services, exec for real.

    status = json.loads(labyrinth("lab", "status", "--json", "--prefix", P).stdout)
    async with KubeApiStub(tmp_path, model=LabCluster(status)) as api: ...

What the API lists is what `labyrinth lab status --json` says the lab built; an exec runs its command
inside the pod's network namespace (`ip netns exec <pod netns> CMD`: the machine's real ncat, the pod's
resolv.conf, the lab's dnsmasq), so the packets it makes cross the lab's veths, iptables and VXLAN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.fakes.kube_model import STAMP, ApiError


@dataclass(frozen=True)
class LabPod:
    namespace: str
    name: str
    node: str
    ip: str
    netns: str
    labels: dict[str, str] = field(default_factory=dict)
    host_network: bool = False
    running: bool = True

    def to_json(self, host_ip: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "nodeName": self.node,
            "containers": [{"name": "main", "image": "seantywork/ubuntu24"}],
        }
        if self.host_network:
            spec["hostNetwork"] = True
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": self.labels,
                "creationTimestamp": STAMP,
            },
            "spec": spec,
            "status": {
                "phase": "Running",
                "hostIP": host_ip,
                "podIP": self.ip,
                "podIPs": [{"ip": self.ip}],
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "True"},
                ],
                "containerStatuses": [
                    {
                        "name": "main",
                        "image": "seantywork/ubuntu24",
                        "imageID": "",
                        "ready": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": STAMP}},
                    }
                ],
            },
        }


class LabCluster:
    """What KubeApiStub serves, read from the lab's status (JSON of LabState); nothing is created."""

    def __init__(self, status: dict[str, Any], *, extra_pods: list[LabPod] | None = None) -> None:
        self.nodes = [(n["name"], n["address"], n["role"]) for n in status["nodes"]]
        self.pods = [
            LabPod(p["namespace"], p["name"], p["node"], p["ip"], p["netns"]) for p in status["pods"]
        ] + list(extra_pods or [])
        self.lab_services = {(s["namespace"], s["name"]): s for s in status["services"]}
        self.namespaces = {"default", "kube-system", *(p.namespace for p in self.pods)}
        self.services = self.lab_services  # the stub lists sorted(self.services) and asks service_json

    # --- what KubeApiStub calls -------------------------------------------------------------------
    def require_namespace(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')

    def nodes_json(self) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {
                        "kubernetes.io/hostname": name,
                        **({f"node-role.kubernetes.io/{role}": ""} if role == "control-plane" else {}),
                    },
                    "creationTimestamp": STAMP,
                },
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                },
            }
            for name, ip, role in self.nodes
        ]

    def pods_json(self, namespace: str | None, selector: dict[str, str]) -> list[dict[str, Any]]:
        host = {name: ip for name, ip, _ in self.nodes}
        return [
            p.to_json(host[p.node])
            for p in self.pods
            if (namespace is None or p.namespace == namespace)
            and all(p.labels.get(k) == v for k, v in selector.items())
        ]

    def pod(self, namespace: str, name: str) -> LabPod:
        for pod in self.pods:
            if (pod.namespace, pod.name) == (namespace, name):
                return pod
        raise ApiError(404, "NotFound", f'pods "{name}" not found')

    def service_json(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.lab_services:
            raise ApiError(404, "NotFound", f'services "{name}" not found')
        svc = self.lab_services[(namespace, name)]
        return {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": STAMP},
            "spec": {
                "type": "ClusterIP",
                "clusterIP": svc["cluster_ip"],
                "clusterIPs": [svc["cluster_ip"]],
                "ports": [
                    {
                        "name": p["name"],
                        "protocol": p["protocol"],
                        "port": p["port"],
                        "targetPort": p["target_port"],
                    }
                    for p in svc["ports"]
                ],
            },
        }

    def endpoint_slices(self) -> list[dict[str, Any]]:
        by_ip = {p.ip: p for p in self.pods}
        return [
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{name}-lab",
                    "namespace": ns,
                    "labels": {"kubernetes.io/service-name": name},
                },
                "addressType": "IPv4",
                "endpoints": [
                    {
                        "addresses": [ip],
                        "conditions": {"ready": True},
                        "nodeName": by_ip[ip].node,
                        "targetRef": {"kind": "Pod", "name": by_ip[ip].name, "namespace": ns},
                    }
                    for ip in svc["endpoints"]
                    if ip in by_ip
                ],
                "ports": [
                    {"name": p["name"], "port": p["target_port"], "protocol": p["protocol"]}
                    for p in svc["ports"]
                ],
            }
            for (ns, name), svc in sorted(self.lab_services.items())
        ]

    def exec_argv(self, pod: LabPod, argv: list[str]) -> list[str]:
        """The command as the lab runs it in the pod (a host-network pod: in its node's netns)."""
        return ["ip", "netns", "exec", pod.netns, *argv]
