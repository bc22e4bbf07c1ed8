"""FakeCluster: the state behind the stub API server — the article's nodes, kube-system, scheduling, rollouts.

Pods are scheduled by nodeSelector against node labels (no match: Pending, Unschedulable, with the
scheduler's own message), start Pending/ContainerCreating and turn Running after `start_after` reads
of them, take the article's IPs (10.0.1.15 on node-1, 10.0.2.215 on node-2, CoreDNS 10.0.2.17) and
are replaced when a Deployment's pod template changes (rollout restart).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STAMP = "2025-05-21T00:00:00Z"
NODES = (
    ("node-0", "10.168.0.2", "control-plane"),
    ("node-1", "10.168.0.4", ""),
    ("node-2", "10.168.0.5", ""),
)
POD_IPS = {
    "node-0": ["10.0.0.23", "10.0.0.24", "10.0.0.25", "10.0.0.26"],
    "node-1": ["10.0.1.15", "10.0.1.16", "10.0.1.17", "10.0.1.18"],
    "node-2": ["10.0.2.17", "10.0.2.215", "10.0.2.216", "10.0.2.217"],
}
SERVICE_IPS = {"node-wrk-2-ubuntu24": "10.105.134.33", "node-wrk-1-ubuntu24": "10.108.9.201"}
UNSCHEDULABLE = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """RFC 7386 JSON merge patch (strategic merge agrees with it for the maps patched here)."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


@dataclass
class FakePod:
    namespace: str
    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    node: str | None
    ip: str
    owner: str | None = None  # deployment name
    template_hash: str = ""
    reads_left: int = 0
    host_network: bool = False

    @property
    def running(self) -> bool:
        return self.node is not None and self.reads_left <= 0

    def to_json(self) -> dict[str, Any]:
        container = self.spec["containers"][0]
        if self.node is None:
            status: dict[str, Any] = {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": UNSCHEDULABLE,
                    }
                ],
            }
        else:
            state = (
                {"running": {"startedAt": STAMP}}
                if self.running
                else {"waiting": {"reason": "ContainerCreating"}}
            )
            ready = "True" if self.running else "False"
            status = {
                "phase": "Running" if self.running else "Pending",
                "hostIP": dict((n, ip) for n, ip, _ in NODES)[self.node],
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {
                        "type": "Ready",
                        "status": ready,
                        **({} if self.running else {"reason": "ContainersNotReady"}),
                    },
                ],
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container["image"],
                        "imageID": "",
                        "ready": self.running,
                        "restartCount": 0,
                        "state": state,
                    }
                ],
            }
            if self.ip and self.running:
                status["podIP"] = self.ip
                status["podIPs"] = [{"ip": self.ip}]
        spec = {**self.spec, **({"nodeName": self.node} if self.node else {})}
        if self.host_network:
            spec["hostNetwork"] = True
        meta = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": self.labels,
            "creationTimestamp": STAMP,
        }
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec, "status": status}


@dataclass
class FakeCluster:
    start_after: int = 2  # reads of a pod before it is Running
    labelled: bool = True  # node-1/node-2 carry nodelabel=node-wrk-1/2 (bootstrap's labels)
    namespaces: set[str] = field(
        default_factory=lambda: {"default", "kube-system", "kube-public", "kube-node-lease"}
    )
    deployments: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    services: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pods: list[FakePod] = field(default_factory=list)
    node_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    # where the fake VMs' `kubectl label node N k=v` records labels: the API server sees them too
    labels_dir: Path | None = None
    _ips: dict[str, list[str]] = field(default_factory=lambda: copy.deepcopy(POD_IPS))
    _suffix: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        for name, ip, role in NODES:
            labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
            if role:
                labels[f"node-role.kubernetes.io/{role}"] = ""
            elif self.labelled:
                labels["nodelabel"] = f"node-wrk-{name[-1]}"
            self.node_labels[name] = labels
            for component in ("kube-proxy", "cilium"):
                self.pods.append(
                    FakePod(
                        "kube-system",
                        f"{component}-{name[-1]}x7q",
                        {"k8s-app": component},
                        {"containers": [{"name": component, "image": component}]},
                        name,
                        ip,
                        host_network=True,
                    )
                )
        coredns_template = {
            "metadata": {"labels": {"k8s-app": "kube-dns"}},
            "spec": {"containers": [{"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.12.0"}]},
        }
        self.create_deployment(
            "kube-system",
            {
                "metadata": {"name": "coredns", "labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    "template": coredns_template,
                },
            },
            pinned="node-2",
            ready=True,
        )
        self.create_service(
            "kube-system",
            {
                "metadata": {"name": "kube-dns", "labels": {"k8s-app": "kube-dns"}},
                "spec": {
                    "clusterIP": "10.96.0.10",
                    "selector": {"k8s-app": "kube-dns"},
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                        {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": "metrics"},
                    ],
                },
            },
        )

    # --- nodes ----------------------------------------------------------------------------------
    def labels(self, node: str) -> dict[str, str]:
        labels = dict(self.node_labels[node])
        recorded = self.labels_dir / node if self.labels_dir is not None else None
        if recorded is not None and recorded.exists():
            key, _, value = recorded.read_text().strip().partition("=")
            labels[key] = value
        return labels

    def nodes_json(self) -> list[dict[str, Any]]:
        return [
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": self.labels(name), "creationTimestamp": STAMP},
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
                },
            }
            for name, ip, _ in NODES
        ]

    def _schedule(self, selector: dict[str, str]) -> str | None:
        for name, _, role in NODES:
            if role:  # the control plane's taint keeps workloads off node-0
                continue
            if all(self.labels(name).get(k) == v for k, v in selector.items()):
                return name
        return None

    # --- namespaces -------------------------------------------------------------------------------
    def require_namespace(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            raise ApiError(404, "NotFound", f'namespaces "{namespace}" not found')

    # --- deployments and their pods --------------------------------------------------------------
    def _template_hash(self, dep: dict[str, Any]) -> str:
        return hashlib.sha256(repr(dep["spec"]["template"]).encode()).hexdigest()[:10]

    def _start_pods(self, namespace: str, dep: dict[str, Any], pinned: str | None, ready: bool) -> None:
        template = dep["spec"]["template"]
        spec = copy.deepcopy(template["spec"])
        node = pinned or self._schedule(spec.get("nodeSelector") or {})
        thash = self._template_hash(dep)
        for _ in range(dep["spec"].get("replicas", 1)):
            name = f"{dep['metadata']['name']}-{thash}-{next(self._suffix):05d}"
            ip = self._ips[node].pop(0) if node else ""
            labels = {**template["metadata"].get("labels", {}), "pod-template-hash": thash}
            pod = FakePod(namespace, name, labels, spec, node, ip, dep["metadata"]["name"], thash)
            pod.reads_left = 0 if ready else self.start_after
            self.pods.append(pod)

    def create_deployment(
        self, namespace: str, body: dict[str, Any], *, pinned: str | None = None, ready: bool = False
    ) -> dict[str, Any]:
        self.require_namespace(namespace)
        name = body["metadata"]["name"]
        if (namespace, name) in self.deployments:
            raise ApiError(409, "AlreadyExists", f'deployments.apps "{name}" already exists')
        dep = copy.deepcopy(body)
        dep["metadata"].update(namespace=namespace, generation=1, creationTimestamp=STAMP)
        self.deployments[(namespace, name)] = dep
        self._start_pods(namespace, dep, pinned, ready)
        return self.deployment_json(namespace, name)

    def patch_deployment(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        dep = self.deployment(namespace, name)
        before = self._template_hash(dep)
        merge(dep, patch)
        if self._template_hash(dep) != before:
            dep["metadata"]["generation"] += 1
            old = [p for p in self.pods if p.namespace == namespace and p.owner == name]
            pinned = old[0].node if old else None
            for pod in old:
                self.pods.remove(pod)
                if pod.ip and pod.node:
                    self._ips[pod.node].insert(0, pod.ip)  # the IP is free again
            self._start_pods(namespace, dep, pinned, ready=False)
        return self.deployment_json(namespace, name)

    def deployment(self, namespace: str, name: str) -> dict[str, Any]:
        self.require_namespace(namespace)
        if (namespace, name) not in self.deployments:
            raise ApiError(404, "NotFound", f'deployments.apps "{name}" not found')
        return self.deployments[(namespace, name)]

    def deployment_json(self, namespace: str, name: str) -> dict[str, Any]:
        dep = copy.deepcopy(self.deployment(namespace, name))
        pods = [p for p in self.pods if p.namespace == namespace and p.owner == name]
        for pod in pods:
            pod.reads_left -= 1  # watching a rollout is reading its pods
        running = sum(p.running for p in pods)
        dep["apiVersion"], dep["kind"] = "apps/v1", "Deployment"
        dep["status"] = {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": len(pods),
            "updatedReplicas": len(pods),
            "readyReplicas": running,
            "availableReplicas": running,
        }
        return dep

    def pods_json(self, namespace: str | None, selector: dict[str, str]) -> list[dict[str, Any]]:
        found = []
        for pod in self.pods:
            if namespace is not None and pod.namespace != namespace:
                continue
            if all(pod.labels.get(k) == v for k, v in selector.items()):
                found.append(pod.to_json())
                pod.reads_left -= 1
        return found

    def pod(self, namespace: str, name: str) -> FakePod:
        for pod in self.pods:
            if (pod.namespace, pod.name) == (namespace, name):
                return pod
        raise ApiError(404, "NotFound", f'pods "{name}" not found')

    # --- services --------------------------------------------------------------------------------
    def create_service(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        self.require_namespace(namespace)
        name = body["metadata"]["name"]
        if (namespace, name) in self.services:
            raise ApiError(409, "AlreadyExists", f'services "{name}" already exists')
        svc = copy.deepcopy(body)
        svc["metadata"].update(namespace=namespace, creationTimestamp=STAMP)
        spec = svc.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault(
            "clusterIP", SERVICE_IPS.get(name, f"10.96.{len(self.services) + 100}.{len(self.services) + 7}")
        )
        spec["clusterIPs"] = [spec["clusterIP"]]
        self.services[(namespace, name)] = svc
        return self.service_json(namespace, name)

    def service_json(self, namespace: str, name: str) -> dict[str, Any]:
        if (namespace, name) not in self.services:
            raise ApiError(404, "NotFound", f'services "{name}" not found')
        return {"apiVersion": "v1", "kind": "Service", **copy.deepcopy(self.services[(namespace, name)])}

    def backends(self, namespace: str, name: str) -> list[FakePod]:
        selector = self.services[(namespace, name)]["spec"].get("selector") or {}
        return [
            p
            for p in self.pods
            if p.namespace == namespace
            and p.running
            and selector
            and all(p.labels.get(k) == v for k, v in selector.items())
        ]

    def endpoint_slices(self) -> list[dict[str, Any]]:
        slices = []
        for (ns, name), svc in sorted(self.services.items()):
            ports = [
                {
                    "name": p.get("name"),
                    "port": p["targetPort"] if isinstance(p["targetPort"], int) else 9153,
                    "protocol": p.get("protocol", "TCP"),
                }
                for p in svc["spec"].get("ports", [])
            ]
            endpoints = [
                {
                    "addresses": [p.ip],
                    "conditions": {"ready": True},
                    "nodeName": p.node,
                    "targetRef": {"kind": "Pod", "name": p.name, "namespace": ns},
                }
                for p in self.backends(ns, name)
            ]
            slices.append(
                {
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {
                        "name": f"{name}-abcde",
                        "namespace": ns,
                        "labels": {"kubernetes.io/service-name": name},
                    },
                    "addressType": "IPv4",
                    "endpoints": endpoints,
                    "ports": ports,
                }
            )
        return slices

    def resolve(self, host: str, from_namespace: str) -> str | None:
        """Cluster DNS as CoreDNS answers it, walking the pod's search list: the Service's ClusterIP."""
        name = host.removesuffix(".svc.cluster.local").removesuffix(".svc")
        parts = name.split(".")
        candidates = (
            [(parts[1], parts[0])]
            if len(parts) == 2
            else [(from_namespace, parts[0])]
            if len(parts) == 1
            else []
        )
        for key in candidates:
            if key in self.services:
                return str(self.services[key]["spec"]["clusterIP"])
        return None

    def service_by_ip(self, cluster_ip: str) -> tuple[str, str] | None:
        return next((k for k, s in self.services.items() if s["spec"]["clusterIP"] == cluster_ip), None)
