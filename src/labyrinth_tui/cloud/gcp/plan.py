"""Plan and Status: what `up`/`down` would do to what exists, what it costs, and what is running now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from labyrinth_tui.cloud.gcp.prices import Estimate, PriceTable
from labyrinth_tui.cloud.gcp.resources import RUNNING_STATES, Found
from labyrinth_tui.cloud.gcp.spec import ClusterSpec, Kind, Ref


class Action(StrEnum):
    CREATE = "create"
    KEEP = "keep"  # exists and is ours: adopted as it is
    CONFLICT = "conflict"  # exists with our name but is not ours: `up` refuses
    DELETE = "delete"
    LEAVE = "leave"  # not ours: `down` never touches it


MARK = {Action.CREATE: "+", Action.KEEP: "=", Action.CONFLICT: "!", Action.DELETE: "-", Action.LEAVE: " "}


@dataclass(frozen=True, slots=True)
class PlanItem:
    ref: Ref
    action: Action
    note: str = ""


@dataclass(frozen=True, slots=True)
class Plan:
    verb: str  # "up" or "down"
    cluster: str
    project: str
    items: tuple[PlanItem, ...]
    estimate: Estimate | None = None  # up: the cluster's hourly cost once everything exists
    stops_hourly: float = 0.0  # down: what deleting stops, per hour
    warnings: tuple[str, ...] = ()

    def refs(self, action: Action) -> list[Ref]:
        return [item.ref for item in self.items if item.action is action]

    @property
    def changes(self) -> bool:
        return any(item.action in (Action.CREATE, Action.DELETE) for item in self.items)

    def lines(self) -> list[str]:
        """The plan as a person reads it."""
        head = f"{self.verb} cluster {self.cluster!r} in project {self.project!r}:"
        out = [head] + [
            f"  {MARK[i.action]} {i.action:<8} {i.ref.label}  {i.note}".rstrip() for i in self.items
        ]
        if not self.items:
            out.append("  nothing of this cluster exists")
        if self.estimate is not None:
            est = self.estimate
            out.append(f"estimated cost while it exists: ${est.hourly:.4f}/hour (≈ ${est.monthly:.2f}/month)")
            out += [
                f"    {ln.count} × {ln.what}: ${ln.hourly:.4f}/hour" for ln in est.lines if ln.unit_hourly
            ]
            out += [f"    {what}: NOT IN THE PRICE TABLE (cost unknown)" for what in est.missing]
            out.append(f"  {est.dated}")
        if self.verb == "down" and self.changes:
            out.append(f"deleting stops about ${self.stops_hourly:.4f}/hour")
        out += list(self.warnings)
        return out

    def to_json(self) -> dict[str, Any]:
        est = self.estimate
        return {
            "verb": self.verb,
            "cluster": self.cluster,
            "project": self.project,
            "items": [
                {"kind": i.ref.kind, "name": i.ref.name, "action": i.action, "note": i.note}
                for i in self.items
            ],
            "hourly_cost": None if est is None else round(est.hourly, 6),
            "monthly_cost": None if est is None else round(est.monthly, 2),
            "prices": None if est is None else est.dated,
            "stops_hourly": round(self.stops_hourly, 6),
            "warnings": list(self.warnings),
        }


def _keep_note(spec: ClusterSpec, found: Found) -> str:
    note = "exists, ours"
    if found.ref.kind is Kind.INSTANCE:
        ip, machine = dict(spec.nodes)[found.ref.name], found.detail.get("machine_type", "")
        if found.detail.get("internal_ip") != ip:
            note += f"; its internal IP is {found.detail.get('internal_ip')}, not {ip} (not changed)"
        if machine != spec.machine_type:
            note += f"; it is a {machine}, not a {spec.machine_type} (not changed)"
    return note


def _pinned(spec: ClusterSpec, ref: Ref) -> str:
    """The addresses `up` pins (the node scripts and the article use them): the subnet's, each node's."""
    if ref.kind is Kind.SUBNET:
        return f"{spec.subnet_cidr}"
    if ref.kind is Kind.INSTANCE:
        return f"internal IP {dict(spec.nodes)[ref.name]}"
    return ""


def plan_up(spec: ClusterSpec, found: list[Found], estimate: Estimate) -> Plan:
    by_ref = {f.ref: f for f in found}
    items: list[PlanItem] = []
    for ref in spec.refs():
        f = by_ref.get(ref)
        if f is None:
            items.append(PlanItem(ref, Action.CREATE, _pinned(spec, ref)))
        elif f.ours:
            items.append(PlanItem(ref, Action.KEEP, _keep_note(spec, f)))
        else:
            why = (
                f"exists, not made by labyrinth-tui for cluster {spec.cluster!r}: delete it or pick --cluster"
            )
            items.append(PlanItem(ref, Action.CONFLICT, why))
    wanted = set(spec.refs())
    # a firewall rule of ours this spec no longer wants (e.g. the article's broad rules) is closed
    for f in found:
        if f.ours and f.ref not in wanted and f.ref.kind is Kind.FIREWALL:
            items.append(PlanItem(f.ref, Action.DELETE, "ours, no longer wanted"))
    warnings = [spec.broad_warning()] if spec.broad_warning() else []
    if not spec.ssh_source_ranges and not spec.article_firewall:
        warnings.append(
            "no --ssh-source-range given: `up` needs it (or --article-firewall) to let your SSH in"
        )
    extra = [f.ref.label for f in found if f.ours and f.ref not in wanted and f.ref.kind is not Kind.FIREWALL]
    if extra:
        warnings.append(f"also ours, not in this spec (kept; `down` removes it): {', '.join(extra)}")
    return Plan("up", spec.cluster, spec.project, tuple(items), estimate, warnings=tuple(warnings))


def plan_down(spec: ClusterSpec, found: list[Found], prices: PriceTable) -> Plan:
    items: list[PlanItem] = []
    ours = [f for f in found if f.ours]
    our_instances = {f.ref.name for f in ours if f.ref.kind is Kind.INSTANCE}
    kept_by_instances = {
        d for f in ours if f.ref.kind is Kind.INSTANCE for d in f.detail.get("kept_disks", [])
    }
    for f in sorted(ours, key=lambda f: f.ref.delete_rank):
        if f.ref.kind is Kind.DISK:
            users = set(f.detail.get("users", []))
            if users - our_instances:
                items.append(
                    PlanItem(f.ref, Action.LEAVE, f"attached to {', '.join(sorted(users))}, not ours")
                )
                continue
            if users and f.ref.name not in kept_by_instances:
                continue  # a boot disk that goes with its instance (auto-delete)
        items.append(
            PlanItem(f.ref, Action.DELETE, f"created {f.created:%Y-%m-%d %H:%M}" if f.created else "")
        )
    foreign = [PlanItem(f.ref, Action.LEAVE, "has our name but is not ours") for f in found if not f.ours]
    stops = sum(hourly(f, spec, prices) for f in ours)
    return Plan("down", spec.cluster, spec.project, tuple(items + foreign), stops_hourly=stops)


def hourly(found: Found, spec: ClusterSpec, prices: PriceTable) -> float:
    """What one existing resource costs per hour now (unknown prices count as 0)."""
    if found.ref.kind is Kind.INSTANCE and found.status in RUNNING_STATES:
        machine = prices.machine_hourly(spec.region, found.detail.get("machine_type", "")) or 0.0
        ip = (prices.ip_hourly(spec.region) or 0.0) if found.detail.get("external_ip") else 0.0
        return machine + ip
    if found.ref.kind is Kind.DISK:
        disk = prices.disk_hourly(
            spec.region, found.detail.get("disk_type", ""), found.detail.get("size_gb", 0)
        )
        return disk or 0.0
    return 0.0


@dataclass(frozen=True, slots=True)
class StatusItem:
    ref: Ref
    status: str
    age_seconds: float
    hourly: float
    accrued: float  # hourly × age: an estimate that assumes the resource ran all along
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Status:
    cluster: str
    project: str
    items: tuple[StatusItem, ...]
    dated: str

    @property
    def hourly(self) -> float:
        return sum(i.hourly for i in self.items)

    @property
    def accrued(self) -> float:
        return sum(i.accrued for i in self.items)

    def lines(self) -> list[str]:
        if not self.items:
            return [
                f"cluster {self.cluster!r} in project {self.project!r}: nothing exists (nothing is billed)"
            ]
        out = [f"cluster {self.cluster!r} in project {self.project!r}:"]
        for i in self.items:
            extra = " ".join(f"{k}={v}" for k, v in i.detail.items() if k in ("internal_ip", "external_ip"))
            out.append(
                f"  {i.ref.label:<34} {i.status or '-':<8} age {_age(i.age_seconds):>6}  "
                f"${i.hourly:.4f}/h  ≈ ${i.accrued:.2f} so far  {extra}".rstrip()
            )
        out.append(f"running cost ${self.hourly:.4f}/hour; ≈ ${self.accrued:.2f} so far; {self.dated}")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "project": self.project,
            "hourly_cost": round(self.hourly, 6),
            "accrued_cost": round(self.accrued, 4),
            "prices": self.dated,
            "resources": [
                {
                    "kind": i.ref.kind,
                    "name": i.ref.name,
                    "status": i.status,
                    "age_seconds": round(i.age_seconds, 1),
                    "hourly_cost": round(i.hourly, 6),
                    "accrued_cost": round(i.accrued, 4),
                    **{k: v for k, v in i.detail.items() if k != "ssh_keys"},
                }
                for i in self.items
            ],
        }


def _age(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"


def build_status(
    spec: ClusterSpec, found: list[Found], prices: PriceTable, now: datetime | None = None
) -> Status:
    now = now or datetime.now(UTC)
    items = []
    for f in sorted((f for f in found if f.ours), key=lambda f: f.ref.create_rank):
        age = max(0.0, (now - f.created).total_seconds()) if f.created else 0.0
        rate = hourly(f, spec, prices)
        items.append(StatusItem(f.ref, f.status, age, rate, rate * age / 3600, f.detail))
    return Status(spec.cluster, spec.project, tuple(items), prices.dated(now.date()))
