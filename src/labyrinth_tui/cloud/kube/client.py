"""KubeClient: the kubernetes client, blocking calls in threads — namespaces, manifests, pods, services."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import urllib3
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from labyrinth_tui.cloud.kube.errors import (
    KubeApiError,
    KubeConfigError,
    KubeTimeout,
    KubeUnreachable,
    ManifestError,
    NamespaceMissing,
)
from labyrinth_tui.cloud.kube.kubeconfig import load_kubeconfig as load_kubeconfig  # its home before
from labyrinth_tui.cloud.kube.manifests import Manifest
from labyrinth_tui.model.decode import short
from labyrinth_tui.model.topology import Service, ServicePort

REQUEST_TIMEOUT: Final = 30.0
# kubectl's own content types: a dict body under the client's default (json-patch) would be refused
MERGE_PATCH: Final = "application/merge-patch+json"
STRATEGIC_PATCH: Final = "application/strategic-merge-patch+json"
RESTARTED_AT: Final = "kubectl.kubernetes.io/restartedAt"
ROLE_PREFIX: Final = "node-role.kubernetes.io/"
POLL_FIRST: Final = 0.1  # s; waits poll fast at first, then every POLL_MAX s
POLL_MAX: Final = 2.0


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    internal_ip: str
    roles: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = False


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    ip: str
    node: str
    phase: str
    host_network: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    ready: bool = False
    why: str = ""  # why it is not Running/ready yet, in the API's words

    @property
    def running(self) -> bool:
        return self.phase == "Running" and self.ready


def api_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return one_line(str(body["message"]))
    return one_line(str(exc.reason or ""))


def one_line(text: str, limit: int = 200) -> str:
    """What the library said, as one line for a person: the WebSocket client's reasons carry the whole
    HTTP response ("Handshake status 200 OK -+-+- {headers} -+-+- {body}"): its status line is kept."""
    head = text.split(" -+-+- ", 1)[0].strip()
    first = head.splitlines()[0] if head else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


def context_cluster(config: Mapping[str, Any], context: str | None) -> tuple[str, dict[str, Any]]:
    """(context name, its cluster entry) — the entry is the dict inside `config`, so it can be edited."""
    name = context or config.get("current-context")
    contexts = {
        c.get("name"): c.get("context") or {} for c in config.get("contexts") or [] if isinstance(c, dict)
    }
    if not name or name not in contexts:
        known = short(", ".join(sorted(str(n) for n in contexts)) or "none")
        raise KubeConfigError(f"no context {short(repr(name))} in the kubeconfig (it has: {known})")
    cluster_name = contexts[name].get("cluster")
    for entry in config.get("clusters") or []:
        if isinstance(entry, dict) and entry.get("name") == cluster_name:
            cluster = entry.setdefault("cluster", {})
            if isinstance(cluster, dict):
                return str(name), cluster
    raise KubeConfigError(
        f"context {short(repr(name))} names cluster {short(repr(cluster_name))}, which the kubeconfig lacks"
    )


class KubeClient:
    """One cluster's API. Every method is async; the kubernetes client's blocking calls run in threads."""

    def __init__(self, api: k8s.ApiClient, *, cluster: str = "cluster", server: str = "") -> None:
        self.api = api
        self.cluster = cluster
        self.server = server
        self.core = k8s.CoreV1Api(api)
        self.discovery = k8s.DiscoveryV1Api(api)

    @functools.cached_property
    def apps(self) -> Any:
        """Deployments, for bootstrap's manifests only: its first use imports ~0.5 s of models, which
        attaching (nodes, pods, services) does not need (`python -X importtime`, kubernetes 37)."""
        return k8s.AppsV1Api(self.api)

    @classmethod
    def from_config(
        cls,
        config: dict[str, Any],
        *,
        context: str | None = None,
        server: str | None = None,
        tls_server_name: str | None = None,
        temp_dir: Path | None = None,
    ) -> KubeClient:
        """A client for `context` of `config`; `server` replaces its address (a local tunnel's end).

        `temp_dir` is where the client library writes the certificates and keys it unpacks from the
        kubeconfig (it needs them as files): give a private directory, not /tmp.
        """
        name, cluster = context_cluster(config, context)
        if server is not None:
            cluster["server"] = server
            if tls_server_name is not None:
                # the API server's certificate names "kubernetes", not 127.0.0.1
                cluster["tls-server-name"] = tls_server_name
        configuration = k8s.Configuration()
        loader: Any = kube_config  # untyped in the library
        try:
            loader.load_kube_config_from_dict(
                config,
                context=name,
                client_configuration=configuration,
                persist_config=False,
                temp_file_path=str(temp_dir) if temp_dir is not None else None,
            )
        except (ConfigException, ValueError, TypeError, AttributeError, KeyError) as exc:
            # load_kubeconfig checked the shape; this is what the library itself refuses (bad base64, …)
            raise KubeConfigError(f"context {short(name)!r}: {short(str(exc))}") from None
        return cls(k8s.ApiClient(configuration), cluster=name, server=str(cluster.get("server", "")))

    def close(self) -> None:
        api: Any = self.api  # untyped in the library
        api.close()

    async def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # Any: the generated models type every field Optional; the API fills the ones read here
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except ApiException as exc:
            if not exc.status:  # the client's way of saying no HTTP answer came
                why = one_line(str(exc.reason or ""))
                raise KubeUnreachable(f"{what}: no answer from {self.server}: {why}") from None
            raise KubeApiError(what, exc.status, api_message(exc)) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise KubeUnreachable(f"{what}: cannot reach the API server at {self.server}: {exc}") from None

    # --- namespaces and manifests --------------------------------------------------------------------
    async def namespace_names(self) -> set[str]:
        found = await self._call("list namespaces", self.core.list_namespace)
        return {ns.metadata.name for ns in found.items}

    async def ensure_namespace(self, name: str) -> bool:
        """`kubectl create namespace NAME`, unless it exists; True when it was created now."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        try:
            await self._call(f"create namespace {name}", self.core.create_namespace, body)
        except KubeApiError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    async def apply(self, manifest: Manifest) -> list[str]:
        """Create each object of `manifest`, or update it when it exists; kubectl-like result lines.

        The namespace is checked first: a missing one is a NamespaceMissing and nothing is created.
        """
        if manifest.namespace not in await self.namespace_names():
            raise NamespaceMissing(manifest.source, manifest.namespace)
        return [await self._apply_one(manifest, obj) for obj in manifest.objects]

    async def _apply_one(self, manifest: Manifest, obj: dict[str, Any]) -> str:
        kind, name, ns = obj["kind"], obj["metadata"]["name"], manifest.namespace
        if kind == "Namespace":
            created = await self.ensure_namespace(name)
            return f"namespace/{name} {'created' if created else 'unchanged'}"
        calls: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "Service": (self.core.create_namespaced_service, self.core.patch_namespaced_service),
            "Deployment": (self.apps.create_namespaced_deployment, self.apps.patch_namespaced_deployment),
        }
        if kind not in calls:
            raise ManifestError(manifest.source, f"cannot apply a {kind}")
        create, patch = calls[kind]
        body = {**obj, "metadata": {**obj["metadata"], "namespace": ns}}
        label = f"{kind.lower()}/{name}"
        try:
            await self._call(f"create {label} in {ns}", create, ns, body)
            return f"{label} created"
        except KubeApiError as exc:
            if exc.status != 409:
                raise
        await self._call(f"update {label} in {ns}", patch, name, ns, body, _content_type=MERGE_PATCH)
        return f"{label} configured"

    # --- waiting ------------------------------------------------------------------------------------------
    async def wait_running(
        self, namespace: str, *, label_selector: str = "", timeout: float = 300.0, poll: float = POLL_FIRST
    ) -> list[PodInfo]:
        """The namespace's pods (matching the selector) once all are Running and ready."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = "no pod yet"
        while True:
            pods = await self.pods(namespace, label_selector=label_selector)
            if pods and all(p.running for p in pods):
                return pods
            if pods:
                seen = "; ".join(f"{p.name} {p.phase}{f' ({p.why})' if p.why else ''}" for p in pods)
            if loop.time() >= deadline:
                what = f"pods in {namespace}" + (f" ({label_selector})" if label_selector else "")
                raise KubeTimeout(f"{what} not Running after {timeout:g} s: {seen}")
            await asyncio.sleep(poll)  # the API offers watch too; a poll that slows down is plenty here
            poll = min(poll * 1.5, POLL_MAX)

    async def restart_deployment(self, namespace: str, name: str) -> str:
        """`kubectl rollout restart deployment NAME`: stamp the pod template, so new pods replace the old."""
        stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        what = f"restart deployment/{name} in {namespace}"
        await self._call(
            what, self.apps.patch_namespaced_deployment, name, namespace, body, _content_type=STRATEGIC_PATCH
        )
        return stamp

    async def wait_rollout(
        self, namespace: str, name: str, *, timeout: float = 300.0, poll: float = POLL_FIRST
    ) -> None:
        """`kubectl rollout status`: every replica updated and available, no old one left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            dep = await self._call(
                f"read deployment/{name} in {namespace}",
                self.apps.read_namespaced_deployment,
                name,
                namespace,
            )
            want = dep.spec.replicas if dep.spec.replicas is not None else 1
            status = dep.status
            observed = (status.observed_generation or 0) >= (dep.metadata.generation or 0)
            updated, available, total = (
                status.updated_replicas or 0,
                status.available_replicas or 0,
                status.replicas or 0,
            )
            if observed and updated == want and available == want and total == want:
                return
            if loop.time() >= deadline:
                seen = f"{updated}/{want} updated, {available}/{want} available, {total} in all"
                raise KubeTimeout(
                    f"deployment/{name} in {namespace} not rolled out after {timeout:g} s: {seen}"
                )
            await asyncio.sleep(poll)
            poll = min(poll * 1.5, POLL_MAX)

    # --- what is there ------------------------------------------------------------------------------------
    async def nodes(self) -> list[NodeInfo]:
        found = await self._call("list nodes", self.core.list_node)
        nodes = []
        for node in found.items:
            labels = dict(node.metadata.labels or {})
            addresses = node.status.addresses or [] if node.status else []
            internal = next((a.address for a in addresses if a.type == "InternalIP"), "")
            conditions = (node.status.conditions or []) if node.status else []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            roles = tuple(sorted(k[len(ROLE_PREFIX) :] for k in labels if k.startswith(ROLE_PREFIX)))
            nodes.append(NodeInfo(node.metadata.name, internal, roles, labels, ready))
        return nodes

    async def pods(self, namespace: str | None = None, *, label_selector: str = "") -> list[PodInfo]:
        if namespace is None:
            found = await self._call(
                "list pods", self.core.list_pod_for_all_namespaces, label_selector=label_selector
            )
        else:
            found = await self._call(
                f"list pods in {namespace}",
                self.core.list_namespaced_pod,
                namespace,
                label_selector=label_selector,
            )
        return [_pod_info(pod) for pod in found.items]

    async def services(self) -> list[Service]:
        """Every Service with its ClusterIP, ports and ready endpoint (pod) addresses."""
        services = await self._call("list services", self.core.list_service_for_all_namespaces)
        slices = await self._call(
            "list endpoint slices", self.discovery.list_endpoint_slice_for_all_namespaces
        )
        endpoints: dict[tuple[str, str], set[str]] = {}
        named_ports: dict[tuple[str, str, str], int] = {}
        for sl in slices.items:
            owner = (sl.metadata.labels or {}).get("kubernetes.io/service-name")
            if not owner:
                continue
            key = (sl.metadata.namespace, owner)
            for ep in sl.endpoints or []:
                if ep.conditions is None or ep.conditions.ready is not False:
                    endpoints.setdefault(key, set()).update(ep.addresses or [])
            for port in sl.ports or []:
                if port.name is not None and port.port is not None:
                    named_ports[(*key, port.name)] = port.port
        result = []
        for svc in services.items:
            ns, name = svc.metadata.namespace, svc.metadata.name
            ports = []
            for p in (svc.spec.ports or []) if svc.spec else []:
                target = p.target_port
                if isinstance(target, str) and not target.isdigit():
                    number = named_ports.get((ns, name, p.name or ""), 0)
                else:
                    number = int(target) if target is not None else p.port
                ports.append(ServicePort(p.name or "", p.protocol or "TCP", p.port, number))
            cluster_ip = (svc.spec.cluster_ip if svc.spec else None) or ""
            result.append(
                Service(ns, name, cluster_ip, tuple(ports), tuple(sorted(endpoints.get((ns, name), ()))))
            )
        return result

    async def pod_ips(self) -> dict[str, tuple[str, str]]:
        """{pod IP: (namespace, name)} of pods with a network namespace of their own (discovery's key)."""
        return {p.ip: (p.namespace, p.name) for p in await self.pods() if p.ip and not p.host_network}


def _pod_info(pod: Any) -> PodInfo:
    status, spec = pod.status, pod.spec
    conditions = (status.conditions or []) if status else []
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    why = ""
    for c in conditions:
        if c.status != "True" and (c.message or c.reason):
            why = c.message or c.reason
            break
    for cs in (status.container_statuses or []) if status else []:
        waiting = cs.state.waiting if cs.state else None
        if waiting is not None and waiting.reason:
            why = waiting.reason + (f": {waiting.message}" if waiting.message else "")
            break
    return PodInfo(
        namespace=pod.metadata.namespace,
        name=pod.metadata.name,
        ip=(status.pod_ip if status else None) or "",
        node=(spec.node_name if spec else None) or "",
        phase=(status.phase if status else None) or "Unknown",
        host_network=bool(spec.host_network) if spec else False,
        labels=dict(pod.metadata.labels or {}),
        ready=ready,
        why=why,
    )
