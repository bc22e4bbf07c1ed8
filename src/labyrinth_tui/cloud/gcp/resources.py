"""The request bodies `up` sends for each resource, and Found: what a list call says exists (and whose)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from labyrinth_tui.cloud.gcp.spec import LABEL_KEY, ClusterSpec, Kind, Ref, owns_description, owns_labels

SSH_KEYS = "ssh-keys"  # the metadata key GCE's guest agent turns into users and authorized_keys
RUNNING_STATES = {"PROVISIONING", "STAGING", "RUNNING"}


def network_body(spec: ClusterSpec) -> Any:
    from google.cloud import compute_v1 as c

    return c.Network(
        name=spec.network_name,
        auto_create_subnetworks=False,  # custom subnets: only 10.168.0.0/24, as in the article
        routing_config=c.NetworkRoutingConfig(routing_mode="REGIONAL"),
        description=spec.description("VPC network"),
    )


def subnet_body(spec: ClusterSpec) -> Any:
    from google.cloud import compute_v1 as c

    return c.Subnetwork(
        name=spec.subnet_name,
        network=spec.network_url,
        region=spec.region,
        ip_cidr_range=spec.subnet_cidr,
        description=spec.description("the nodes' subnet"),
    )


def firewall_body(spec: ClusterSpec, name: str) -> Any:
    from google.cloud import compute_v1 as c

    rule = next(r for r in spec.firewall_rules() if r.name == name)
    return c.Firewall(
        name=rule.name,
        network=spec.network_url,
        direction="INGRESS",
        priority=1000,
        allowed=[c.Allowed(I_p_protocol=proto, ports=list(ports)) for proto, ports in rule.allowed],
        source_ranges=list(rule.source_ranges),
        description=spec.description(rule.purpose),
    )


def ssh_keys_value(spec: ClusterSpec, public_key: str) -> str:
    return f"{spec.ssh_user}:{public_key}"


def instance_body(spec: ClusterSpec, name: str, public_key: str) -> Any:
    from google.cloud import compute_v1 as c

    internal_ip = dict(spec.nodes)[name]
    labels = {LABEL_KEY: spec.cluster}
    return c.Instance(
        name=name,
        machine_type=spec.machine_type_url,
        description=spec.description(f"Kubernetes node {name}"),
        labels=labels,
        metadata=c.Metadata(items=[c.Items(key=SSH_KEYS, value=ssh_keys_value(spec, public_key))]),
        disks=[
            c.AttachedDisk(
                boot=True,
                auto_delete=True,  # the disk goes with its instance: nothing billed after `down`
                type_="PERSISTENT",
                initialize_params=c.AttachedDiskInitializeParams(
                    source_image=spec.image_url,
                    disk_size_gb=spec.disk_size_gb,
                    disk_type=spec.disk_type_url,
                    labels=labels,
                ),
            )
        ],
        network_interfaces=[
            c.NetworkInterface(
                network=spec.network_url,
                subnetwork=spec.subnet_url,
                network_i_p=internal_ip,  # pinned: the node scripts use .2, .4, .5
                access_configs=[c.AccessConfig(name="External NAT", type_="ONE_TO_ONE_NAT")],
            )
        ],
    )


def body_for(spec: ClusterSpec, ref: Ref, public_key: str) -> Any:
    if ref.kind is Kind.NETWORK:
        return network_body(spec)
    if ref.kind is Kind.SUBNET:
        return subnet_body(spec)
    if ref.kind is Kind.FIREWALL:
        return firewall_body(spec, ref.name)
    if ref.kind is Kind.INSTANCE:
        return instance_body(spec, ref.name, public_key)
    raise ValueError(f"up never creates a {ref.kind}")


@dataclass(frozen=True, slots=True)
class Found:
    """One resource as a list call reported it."""

    ref: Ref
    ours: bool
    created: datetime | None = None
    status: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


def _created(item: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(item.creation_timestamp) if item.creation_timestamp else None
    except ValueError:
        return None


def _last(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def is_ours(kind: Kind, item: Any, cluster: str) -> bool:
    if kind in (Kind.INSTANCE, Kind.DISK):
        return owns_labels(dict(item.labels), cluster)
    return owns_description(item.description, cluster)


def _detail(kind: Kind, item: Any) -> dict[str, Any]:
    if kind is Kind.INSTANCE:
        nic = item.network_interfaces[0] if item.network_interfaces else None
        access = nic.access_configs[0] if nic is not None and nic.access_configs else None
        return {
            "machine_type": _last(item.machine_type),
            "internal_ip": nic.network_i_p if nic is not None else "",
            "external_ip": access.nat_i_p if access is not None else "",
            "ssh_keys": next((i.value for i in item.metadata.items if i.key == SSH_KEYS), ""),
            "kept_disks": [_last(d.source) for d in item.disks if not d.auto_delete],
        }
    if kind is Kind.DISK:
        return {
            "disk_type": _last(item.type_),
            "size_gb": int(item.size_gb),
            "users": [_last(u) for u in item.users],
        }
    if kind is Kind.FIREWALL:
        return {"source_ranges": list(item.source_ranges)}
    if kind is Kind.SUBNET:
        return {"ip_cidr_range": item.ip_cidr_range}
    return {}


def relevant(spec: ClusterSpec, kind: Kind, item: Any) -> bool:
    """Ours, or carrying a name we need (then it is a conflict unless ours)."""
    wanted = {ref.name for ref in spec.refs() if ref.kind is kind}
    if kind is Kind.DISK:
        wanted = {name for name, _ in spec.nodes}  # boot disks take their instance's name
    return item.name in wanted or is_ours(kind, item, spec.cluster)


def to_found(spec: ClusterSpec, kind: Kind, item: Any) -> Found:
    return Found(
        ref=Ref(kind, item.name),
        ours=is_ours(kind, item, spec.cluster),
        created=_created(item),
        status=str(getattr(item, "status", "") or "") if kind in (Kind.INSTANCE, Kind.DISK) else "",
        detail=_detail(kind, item),
    )
