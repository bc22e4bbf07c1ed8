"""FakeCompute: the state of a fake GCE project — resources, operations, request_ids, latency and faults.

It behaves like compute/v1 where labyrinth depends on it: a create or delete returns an operation that
is DONE only after the injected latency; a repeated request_id returns the first operation; names are
unique; a subnet needs its network, an instance its subnet and a free address; nothing in use can be
deleted; boot disks marked autoDelete go with their instance.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

BASE = "https://www.googleapis.com/compute/v1"
NAME_RE = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
SCOPE = {
    "networks": "global",
    "firewalls": "global",
    "subnetworks": "regions",
    "instances": "zones",
    "disks": "zones",
}
FAULT_KINDS = {"conflict_ours", "conflict_foreign", "op_error", "quota", "stuck", "hang", "unavailable"}


class ApiError(Exception):
    """An HTTP error the way GCE sends it."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> dict[str, Any]:
        item = {"message": self.message, "domain": "global", "reason": self.reason}
        return {"error": {"code": self.code, "message": self.message, "errors": [item]}}


@dataclass
class Fault:
    """One injected misbehaviour, on `method` ("insert"/"delete") of `collection` (and `name`, if given).

    conflict_ours / conflict_foreign: the resource appears (with our label or someone else's) and the
        insert gets 409, as when another run or person created it since the plan;
    op_error: the operation ends in an error; quota: the operation ends in QUOTA_EXCEEDED (as GCE does
        for CPUS); stuck: the operation never finishes (until release_stuck());
    hang: the request is acted on, but the answer comes only after `seconds` (the client times out);
    unavailable: the request is acted on, but the answer is a 503 (the client must retry, same id).
    """

    kind: str
    collection: str
    name: str | None = None
    method: str = "insert"
    times: int = 1
    seconds: float = 0.0
    owner: str = "labyrinth"  # conflict_ours: the cluster the resource is labelled with

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}: one of {sorted(FAULT_KINDS)}")

    def matches(self, method: str, collection: str, name: str) -> bool:
        return (self.method, self.collection) == (method, collection) and self.name in (None, name)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)


@dataclass
class Op:
    name: str
    project: str
    location: str  # "global", a region or a zone
    collection: str
    op_type: str
    target: str
    done_at: float
    effect: Callable[[], None] | None
    error: dict[str, Any] | None = None
    applied: bool = False
    finished_at: float = 0.0

    @property
    def done(self) -> bool:
        return self.applied


def location_path(collection: str, location: str) -> str:
    return "global" if SCOPE[collection] == "global" else f"{SCOPE[collection]}/{location}"


def last(url: str) -> str:
    return str(url).rsplit("/", 1)[-1]


class FakeCompute:
    """Thread-safe; every public method may be called from the test while the server runs."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.resources: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.ops: dict[str, Op] = {}
        self.by_request_id: dict[str, str] = {}
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.create_latency: dict[str, float] = {}  # collection → seconds; "*" for all
        self.delete_latency: dict[str, float] = {}
        self.wait_cap = 5.0  # GCE's wait returns after 2 minutes at most; the fake sooner
        self._ids = itertools.count(1000)
        self._nat = itertools.count(10)

    # -- used by tests -----------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        with self.cond:
            self.faults.append(fault)

    def set_latency(self, create: float = 0.0, delete: float = 0.0, **per_collection: float) -> None:
        with self.cond:
            self.create_latency = {"*": create, **per_collection}
            self.delete_latency = {"*": delete}

    def seed(self, project: str, collection: str, location: str, body: dict[str, Any]) -> None:
        """A resource that already exists (someone else's, or an earlier run's)."""
        with self.cond:
            self._store(project, collection, location, dict(body))

    def release_stuck(self) -> None:
        with self.cond:
            for op in self.ops.values():
                if op.done_at == float("inf"):
                    op.done_at = time.monotonic()
            self.cond.notify_all()

    def backdate(self, seconds: float) -> None:
        with self.cond:
            for res in self.resources.values():
                created = datetime.fromisoformat(res["creationTimestamp"]) - timedelta(seconds=seconds)
                res["creationTimestamp"] = created.isoformat(timespec="milliseconds")

    def names(self, collection: str) -> list[str]:
        with self.cond:
            self.settle()
            return sorted(name for (c, _, name) in self.resources if c == collection)

    def get_resource(self, collection: str, name: str) -> dict[str, Any]:
        with self.cond:
            self.settle()
            found = self._find(collection, name)
            if found is None:
                raise LookupError(f"the fake holds no {collection} named {name!r}")
            return found

    def calls(self, method: str, collection: str) -> list[Recorded]:
        """Requests received, e.g. calls("POST", "instances") = every instance insert, retries included."""
        with self.cond:
            return [r for r in self.requests if r.method == method and _collection_of(r.path) == collection]

    # -- the state machine ---------------------------------------------------------------------------
    def settle(self) -> None:
        """Finish every operation whose time has come (callers hold the lock)."""
        now = time.monotonic()
        for op in self.ops.values():
            if not op.applied and now >= op.done_at:
                if op.error is None and op.effect is not None:
                    op.effect()
                op.applied, op.finished_at = True, now

    def take_fault(self, method: str, collection: str, name: str, kinds: set[str]) -> Fault | None:
        for fault in self.faults:
            if fault.kind in kinds and fault.matches(method, collection, name):
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _self_link(self, project: str, collection: str, location: str, name: str) -> str:
        return f"{BASE}/projects/{project}/{location_path(collection, location)}/{collection}/{name}"

    def _store(self, project: str, collection: str, location: str, body: dict[str, Any]) -> None:
        name = body["name"]
        body.setdefault("id", str(next(self._ids)))
        body.setdefault("creationTimestamp", datetime.now(UTC).isoformat(timespec="milliseconds"))
        body["selfLink"] = self._self_link(project, collection, location, name)
        body["kind"] = f"compute#{collection[:-1]}"
        self.resources[(collection, location, name)] = body

    def _find(self, collection: str, name: str) -> dict[str, Any] | None:
        return next((r for (c, _, n), r in self.resources.items() if (c, n) == (collection, name)), None)

    def _pending(self, collection: str, name: str) -> bool:
        return any(
            o.collection == collection and last(o.target) == name and not o.applied and o.op_type == "insert"
            for o in self.ops.values()
        )

    def _new_op(
        self, project: str, collection: str, location: str, op_type: str, name: str, latency: float
    ) -> Op:
        op = Op(
            name=f"operation-{next(self._ids)}-{uuid.uuid4().hex[:8]}",
            project=project,
            location=location,
            collection=collection,
            op_type=op_type,
            target=self._self_link(project, collection, location, name),
            done_at=time.monotonic() + latency,
            effect=None,
        )
        self.ops[op.name] = op
        return op

    def op_json(self, op: Op) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "compute#operation",
            "id": op.name.split("-")[1],
            "name": op.name,
            "operationType": op.op_type,
            "targetLink": op.target,
            "status": "DONE" if op.done else "RUNNING",
            "progress": 100 if op.done else 0,
            "selfLink": f"{BASE}/projects/{op.project}/{_op_scope(op)}/operations/{op.name}",
        }
        scope = SCOPE[op.collection]
        if scope != "global":
            out[scope[:-1]] = f"{BASE}/projects/{op.project}/{scope}/{op.location}"
        if op.done and op.error is not None:
            out["error"] = {"errors": [op.error]}
            out["httpErrorStatusCode"] = 403 if op.error["code"] == "QUOTA_EXCEEDED" else 400
        return out

    def find_op(self, name: str) -> Op:
        self.settle()
        if name not in self.ops:
            raise ApiError(404, "notFound", f"The resource 'operations/{name}' was not found")
        return self.ops[name]

    def wait_op(self, name: str) -> dict[str, Any]:
        """POST …/operations/NAME/wait: returns when the operation is DONE, or after wait_cap seconds."""
        deadline = time.monotonic() + self.wait_cap
        with self.cond:
            while True:
                op = self.find_op(name)
                remaining = min(op.done_at, deadline) - time.monotonic()
                if op.done or remaining <= 0:
                    return self.op_json(op)
                self.cond.wait(remaining)

    def _latency(self, table: dict[str, float], collection: str) -> float:
        return table.get(collection, table.get("*", 0.0))

    def _apply_op_faults(self, op: Op, method: str, collection: str, name: str) -> None:
        fault = self.take_fault(method, collection, name, {"op_error", "quota", "stuck"})
        if fault is None:
            return
        if fault.kind == "stuck":
            op.done_at = float("inf")
        elif fault.kind == "quota":
            op.error = {
                "code": "QUOTA_EXCEEDED",
                "message": f"Quota 'CPUS' exceeded.  Limit: 2.0 in region {op.location.rsplit('-', 1)[0]}.",
            }
        else:
            op.error = {
                "code": "ZONE_RESOURCE_POOL_EXHAUSTED",
                "message": f"The zone does not have enough resources to fulfil the request for {name}.",
            }

    def insert(
        self, project: str, collection: str, location: str, body: dict[str, Any], request_id: str
    ) -> Op:
        name = str(body.get("name", ""))
        if request_id:
            try:
                if uuid.UUID(request_id).int == 0:
                    raise ValueError
            except ValueError:
                raise ApiError(
                    400, "invalid", f"Invalid value for field 'requestId': '{request_id}'"
                ) from None
            if request_id in self.by_request_id:  # GCE acts on a request_id once and answers alike
                return self.ops[self.by_request_id[request_id]]
        if not NAME_RE.match(name):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.name': '{name}'")
        self.settle()
        conflict = self.take_fault("insert", collection, name, {"conflict_ours", "conflict_foreign"})
        if conflict is not None:
            self._store(project, collection, location, _someone_elses(collection, body, conflict))
        if self._find(collection, name) is not None or self._pending(collection, name):
            raise ApiError(409, "alreadyExists", f"The resource '{name}' already exists")
        effect = self._validate_insert(project, collection, location, body)
        op = self._new_op(
            project, collection, location, "insert", name, self._latency(self.create_latency, collection)
        )
        op.effect = effect
        self._apply_op_faults(op, "insert", collection, name)
        if request_id:
            self.by_request_id[request_id] = op.name
        return op

    def _validate_insert(
        self, project: str, collection: str, location: str, body: dict[str, Any]
    ) -> Callable[[], None]:
        stored = dict(body)
        extra: list[tuple[str, dict[str, Any]]] = []
        if collection in ("subnetworks", "firewalls"):
            self._need("networks", last(body.get("network", "")), project)
        if collection == "subnetworks":
            ipaddress.ip_network(body["ipCidrRange"], strict=True)
        if collection == "instances":
            stored, extra = self._instance(project, location, body)
        if collection == "disks":
            raise ApiError(400, "invalid", "this fake creates disks only as instances' boot disks")

        def effect() -> None:
            self._store(project, collection, location, stored)
            for disk_collection, disk in extra:
                self._store(project, disk_collection, location, disk)

        return effect

    def _need(self, collection: str, name: str, project: str) -> dict[str, Any]:
        found = self._find(collection, name)
        if found is None:
            raise ApiError(
                404, "notFound", f"The resource 'projects/{project}/…/{collection}/{name}' was not found"
            )
        return found

    def _instance(
        self, project: str, zone: str, body: dict[str, Any]
    ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        machine = body.get("machineType", "")
        if not re.fullmatch(rf"(.*/)?zones/{zone}/machineTypes/[a-z0-9-]+", machine):
            raise ApiError(400, "invalid", f"Invalid value for field 'resource.machineType': '{machine}'")
        nic = dict(body["networkInterfaces"][0])
        subnet = self._need("subnetworks", last(nic.get("subnetwork", "")), project)
        ip = nic.get("networkIP", "")
        if ip:
            if ipaddress.ip_address(ip) not in ipaddress.ip_network(subnet["ipCidrRange"]):
                raise ApiError(400, "invalid", f"IP address '{ip}' is not in the subnetwork's range")
            users = [n for (c, _, n), r in self.resources.items() if c == "instances" and _ip(r) == ip]
            if users:
                raise ApiError(400, "invalid", f"IP address '{ip}' is already being used by {users[0]}")
        nic["networkIP"] = ip or str(ipaddress.ip_network(subnet["ipCidrRange"])[2])
        nic["accessConfigs"] = [
            dict(a, natIP=f"203.0.113.{next(self._nat)}") for a in nic.get("accessConfigs", [])
        ]
        stored = dict(body, networkInterfaces=[nic], status="RUNNING")
        disks: list[tuple[str, dict[str, Any]]] = []
        attached = []
        for disk in body.get("disks", []):
            params = disk.get("initializeParams", {})
            disk_type = params.get("diskType", f"zones/{zone}/diskTypes/pd-standard")
            disk_name = params.get("diskName", body["name"])
            disk_body = {
                "name": disk_name,
                "sizeGb": str(params.get("diskSizeGb", "10")),
                "type": f"{BASE}/projects/{project}/{disk_type}",
                "sourceImage": params.get("sourceImage", ""),
                "labels": params.get("labels", {}),
                "users": [self._self_link(project, "instances", zone, body["name"])],
                "status": "READY",
            }
            disks.append(("disks", disk_body))
            source = self._self_link(project, "disks", zone, disk_name)
            attached.append(dict(disk, source=source))
        stored["disks"] = attached
        return stored, disks

    def delete(self, project: str, collection: str, location: str, name: str, request_id: str) -> Op:
        if request_id and request_id in self.by_request_id:
            return self.ops[self.by_request_id[request_id]]
        self.settle()
        res = self._find(collection, name)
        if res is None:
            raise ApiError(404, "notFound", f"The resource '{name}' was not found")
        link = res["selfLink"]
        in_use = [
            n for (_, _, n), r in self.resources.items() if any(_same(link, ref) for ref in _references(r))
        ]
        if collection == "disks" and res.get("users"):
            in_use = [last(u) for u in res["users"]]
        if in_use:
            what = f"The {collection[:-1]} resource '{name}' is already being used by '{in_use[0]}'"
            raise ApiError(400, "resourceInUseByAnotherResource", what)
        op = self._new_op(
            project, collection, location, "delete", name, self._latency(self.delete_latency, collection)
        )

        def effect() -> None:
            self.resources.pop((collection, location, name), None)
            if collection == "instances":
                for disk in res.get("disks", []):
                    key = ("disks", location, last(disk["source"]))
                    if disk.get("autoDelete"):
                        self.resources.pop(key, None)
                    elif key in self.resources:
                        self.resources[key]["users"] = []

        op.effect = effect
        self._apply_op_faults(op, "delete", collection, name)
        if request_id:
            self.by_request_id[request_id] = op.name
        return op

    def list(self, collection: str, location: str) -> list[dict[str, Any]]:
        self.settle()
        return [r for (c, loc, _), r in sorted(self.resources.items()) if c == collection and loc == location]

    def get(self, collection: str, location: str, name: str) -> dict[str, Any]:
        self.settle()
        res = self.resources.get((collection, location, name))
        if res is None:
            raise ApiError(404, "notFound", f"The resource '{name}' was not found")
        return res


def _same(link: str, ref: Any) -> bool:
    """A reference may be a full URL or a partial one ("projects/p/global/networks/n")."""
    return isinstance(ref, str) and bool(ref) and link.endswith("/" + ref.split("compute/v1/")[-1])


def _references(res: dict[str, Any]) -> list[Any]:
    nics = res.get("networkInterfaces", [])
    return [res.get("network"), *(i.get("network") for i in nics), *(i.get("subnetwork") for i in nics)]


def _ip(instance: dict[str, Any]) -> str:
    return str(instance.get("networkInterfaces", [{}])[0].get("networkIP", ""))


def _op_scope(op: Op) -> str:
    return location_path(op.collection, op.location)


def _collection_of(path: str) -> str:
    parts = path.split("?")[0].split("/")
    for i, part in enumerate(parts):
        if part in SCOPE and (i + 1 == len(parts) or parts[i + 1] != "operations"):
            return part
    return "operations" if "operations" in parts else ""


def _someone_elses(collection: str, body: dict[str, Any], fault: Fault) -> dict[str, Any]:
    """The resource as the conflicting creator made it: same name, ours or someone else's marks."""
    if fault.kind == "conflict_ours":
        copy = dict(body)
        copy.pop("networkInterfaces", None)
        if collection == "instances":
            nic = dict(body["networkInterfaces"][0], accessConfigs=[{"natIP": "203.0.113.99"}])
            copy.update(networkInterfaces=[nic], status="RUNNING", labels={"labyrinth": fault.owner})
        return copy
    return {
        "name": body["name"],
        "description": "someone else's",
        "labels": {"team": "web"},
        "status": "RUNNING",
    }
