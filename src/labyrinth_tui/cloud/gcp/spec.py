"""ClusterSpec: the article's GCP cluster as data — names, addresses, sizes, firewalls, ownership marks."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

from labyrinth_tui.cloud.gcp.errors import GcpSpecError

LABEL_KEY = "labyrinth"
# The node scripts of the article pin these addresses (node-ctl.sh: IP="10.168.0.2").
ARTICLE_NODES: tuple[tuple[str, str], ...] = (
    ("node-0", "10.168.0.2"),
    ("node-1", "10.168.0.4"),
    ("node-2", "10.168.0.5"),
)
ANYWHERE = "0.0.0.0/0"

_CLUSTER_RE = re.compile(r"^[a-z]([-a-z0-9]{0,20}[a-z0-9])?$")  # leaves room for "-allow-all-anywhere"
_NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
_TOKEN_RE = re.compile(r"^[a-z0-9][-a-z0-9]*$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
# what can appear in a project id (a-z 0-9 '-', and '.' ':' of the legacy `domain.com:id` form): a '/'
# would change the API path it is put in
_PROJECT_RE = re.compile(r"[a-z0-9][-a-z0-9.:]{0,99}")


def covers_all_ipv4(ranges: tuple[str, ...] | list[str]) -> bool:
    """True when the ranges together are all of IPv4 (0.0.0.0/0, or 0.0.0.0/1 + 128.0.0.0/1, …)."""
    nets = []
    for text in ranges:
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if isinstance(net, ipaddress.IPv4Network):
            nets.append(net)
    return list(ipaddress.collapse_addresses(nets)) == [ipaddress.IPv4Network(ANYWHERE)]


class Kind(StrEnum):
    """A kind of GCE resource this cluster is made of, named as the console names it."""

    NETWORK = "network"
    SUBNET = "subnet"
    FIREWALL = "firewall"
    INSTANCE = "instance"
    DISK = "disk"


# what must exist before a resource of this kind can be created; deletes run the other way round
CREATE_AFTER: dict[Kind, tuple[Kind, ...]] = {
    Kind.SUBNET: (Kind.NETWORK,),
    Kind.FIREWALL: (Kind.NETWORK,),
    Kind.INSTANCE: (Kind.SUBNET,),
}
DELETE_AFTER: dict[Kind, tuple[Kind, ...]] = {
    Kind.NETWORK: (Kind.SUBNET, Kind.FIREWALL),
    Kind.SUBNET: (Kind.INSTANCE,),
    Kind.DISK: (Kind.INSTANCE,),
}


DELETE_ORDER = (Kind.INSTANCE, Kind.DISK, Kind.FIREWALL, Kind.SUBNET, Kind.NETWORK)


@dataclass(frozen=True, slots=True)
class Ref:
    """One resource by kind and name (its project, region and zone come from the spec)."""

    kind: Kind
    name: str

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"

    @property
    def create_rank(self) -> tuple[int, str]:
        return (list(Kind).index(self.kind), self.name)

    @property
    def delete_rank(self) -> tuple[int, str]:
        return (DELETE_ORDER.index(self.kind), self.name)

    @property
    def step_key(self) -> tuple[str, str]:
        """Where the resource's progress shows: instances under their node, the rest under "cluster"."""
        return (self.name, "instance") if self.kind is Kind.INSTANCE else ("cluster", self.label)


@dataclass(frozen=True, slots=True)
class FirewallRule:
    name: str
    allowed: tuple[tuple[str, tuple[str, ...]], ...]  # (IP protocol, ports); no ports = all of them
    source_ranges: tuple[str, ...]
    purpose: str
    broad: bool = False  # open to the whole internet: the article's rules


@dataclass(frozen=True, slots=True)
class NodeAccess:
    """What reaching a node needs once `up` is done."""

    name: str
    internal_ip: str
    external_ip: str
    ssh_user: str
    private_key_path: str


def marker(cluster: str) -> str:
    """The first word of the description of every label-less resource we make (networks, firewalls)."""
    return f"{LABEL_KEY}={cluster}"


def owns_description(description: str, cluster: str) -> bool:
    return description.split(" ", 1)[0] == marker(cluster)


def owns_labels(labels: dict[str, str], cluster: str) -> bool:
    return labels.get(LABEL_KEY) == cluster


def parse_source_range(text: str) -> str:
    """A CIDR the caller's SSH comes from; a bare address means that one address (/32)."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as e:
        raise GcpSpecError(f"--ssh-source-range {text!r} is not an address range ({e})") from None
    if net.version != 4:
        raise GcpSpecError(f"--ssh-source-range {text!r}: GCE firewall source ranges here are IPv4")
    return str(net)


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """Everything `plan` and `up` need; the defaults are the article's choices."""

    cluster: str = "labyrinth"
    project: str = ""
    region: str = "us-east4"
    zone: str = "us-east4-b"
    subnet_cidr: str = "10.168.0.0/24"
    nodes: tuple[tuple[str, str], ...] = ARTICLE_NODES
    machine_type: str = "e2-medium"
    image_project: str = "ubuntu-os-cloud"
    image_family: str = "ubuntu-2404-lts-amd64"
    disk_size_gb: int = 32
    disk_type: str = "pd-standard"
    ssh_source_ranges: tuple[str, ...] = ()
    article_firewall: bool = False
    ssh_user: str = "labyrinth"

    # -- names -------------------------------------------------------------------------------------
    @property
    def network_name(self) -> str:
        return self.cluster

    @property
    def subnet_name(self) -> str:
        return f"{self.cluster}-{self.region}"

    @property
    def firewall_prefix(self) -> str:
        return f"{self.cluster}-"

    def description(self, what: str) -> str:
        return (
            f"{marker(self.cluster)} · {what}, made by labyrinth-tui; "
            f"remove with `labyrinth gcp down --cluster {self.cluster}`"
        )

    # -- URLs the API takes ------------------------------------------------------------------------
    @property
    def network_url(self) -> str:
        return f"projects/{self.project}/global/networks/{self.network_name}"

    @property
    def subnet_url(self) -> str:
        return f"projects/{self.project}/regions/{self.region}/subnetworks/{self.subnet_name}"

    @property
    def machine_type_url(self) -> str:
        return f"zones/{self.zone}/machineTypes/{self.machine_type}"

    @property
    def disk_type_url(self) -> str:
        return f"zones/{self.zone}/diskTypes/{self.disk_type}"

    @property
    def image_url(self) -> str:
        return f"projects/{self.image_project}/global/images/family/{self.image_family}"

    # -- what the cluster is made of ---------------------------------------------------------------
    def firewall_rules(self) -> tuple[FirewallRule, ...]:
        rules: list[FirewallRule] = []
        if self.ssh_source_ranges:
            rules.append(
                FirewallRule(
                    f"{self.firewall_prefix}allow-ssh",
                    (("tcp", ("22",)),),
                    self.ssh_source_ranges,
                    "SSH from the caller's range",
                    broad=covers_all_ipv4(self.ssh_source_ranges),
                )
            )
        rules.append(
            FirewallRule(
                f"{self.firewall_prefix}allow-internal",
                (("all", ()),),
                (self.subnet_cidr,),
                "all traffic between the nodes",
            )
        )
        if self.article_firewall:
            rules.append(
                FirewallRule(
                    f"{self.firewall_prefix}allow-ssh-anywhere",
                    (("tcp", ("22",)),),
                    (ANYWHERE,),
                    "the article's allow-ssh: SSH from anywhere",
                    broad=True,
                )
            )
            rules.append(
                FirewallRule(
                    f"{self.firewall_prefix}allow-all-anywhere",
                    (("all", ()),),
                    (ANYWHERE,),
                    "the article's broad rule: everything from anywhere",
                    broad=True,
                )
            )
        return tuple(rules)

    def refs(self) -> tuple[Ref, ...]:
        """Every resource `up` makes, in creation order (boot disks come with their instances)."""
        return (
            Ref(Kind.NETWORK, self.network_name),
            Ref(Kind.SUBNET, self.subnet_name),
            *(Ref(Kind.FIREWALL, rule.name) for rule in self.firewall_rules()),
            *(Ref(Kind.INSTANCE, name) for name, _ in self.nodes),
        )

    def broad_warning(self) -> str:
        """Non-empty when a firewall rule opens the nodes to the whole internet."""
        broad = [rule.name for rule in self.firewall_rules() if rule.broad]
        if not broad:
            return ""
        return (
            f"WARNING: {', '.join(broad)} open(s) the nodes to the whole internet ({ANYWHERE}), as the "
            "article did ('it's not wise to use such a broad range'). Prefer --ssh-source-range YOUR.IP/32."
        )

    def validate(self, *, for_up: bool = False) -> None:
        """Raise GcpSpecError with the reason when a value cannot work."""
        if not _CLUSTER_RE.match(self.cluster):
            raise GcpSpecError(
                f"cluster name {self.cluster!r}: use 1-22 lowercase letters, digits or '-', starting with a "
                "letter (it prefixes every resource name and is the value of the `labyrinth` label)"
            )
        if not self.project:
            raise GcpSpecError(
                "no project: pass --project, set GOOGLE_CLOUD_PROJECT, or `gcloud config set project`"
            )
        if not _PROJECT_RE.fullmatch(self.project):
            shown = self.project if len(self.project) <= 40 else self.project[:39] + "…"
            raise GcpSpecError(f"project {shown!r}: a GCP project id is made of a-z, 0-9 and '-'")
        if not self.zone.startswith(f"{self.region}-"):
            raise GcpSpecError(f"zone {self.zone!r} is not in region {self.region!r}")
        for what, value in (
            ("region", self.region),
            ("zone", self.zone),
            ("machine type", self.machine_type),
            ("image project", self.image_project),
            ("image family", self.image_family),
            ("disk type", self.disk_type),
        ):
            if not _TOKEN_RE.match(value):
                raise GcpSpecError(f"{what} {value!r}: lowercase letters, digits and '-' only")
        if not _USER_RE.match(self.ssh_user):
            raise GcpSpecError(f"ssh user {self.ssh_user!r} is not a valid Linux user name")
        if not 10 <= self.disk_size_gb <= 65536:
            raise GcpSpecError(f"disk size {self.disk_size_gb} GB: the Ubuntu image needs 10 GB to 64 TB")
        self._validate_addresses()
        for ssh_range in self.ssh_source_ranges:
            parse_source_range(ssh_range)
        if for_up and not self.ssh_source_ranges and not self.article_firewall:
            raise GcpSpecError(
                "no SSH source range: pass --ssh-source-range YOUR.PUBLIC.IP/32 (the range your SSH comes "
                "from; labyrinth does not guess it over the network), or --article-firewall for the "
                "article's rules open to the whole internet"
            )

    def _validate_addresses(self) -> None:
        try:
            subnet = ipaddress.ip_network(self.subnet_cidr, strict=True)
        except ValueError as e:
            raise GcpSpecError(f"subnet {self.subnet_cidr!r}: {e}") from None
        # GCE keeps the first two and the last two addresses of a subnet for itself
        usable = range(int(subnet.network_address) + 2, int(subnet.broadcast_address) - 1)
        names, ips = [n for n, _ in self.nodes], [ip for _, ip in self.nodes]
        if len(set(names)) != len(names) or len(set(ips)) != len(ips):
            raise GcpSpecError("node names and internal addresses must be unique")
        for name, ip in self.nodes:
            if not _NAME_RE.match(name):
                raise GcpSpecError(f"node name {name!r} is not a valid instance name")
            try:
                address = ipaddress.ip_address(ip)
            except ValueError as e:
                raise GcpSpecError(f"{name}: {e}") from None
            if int(address) not in usable:
                raise GcpSpecError(f"{name}: {ip} is not a usable address of {self.subnet_cidr}")
