"""`up` against the local fake GCE via the real compute_v1 REST client: exact requests, order, progress."""

from __future__ import annotations

import asyncio
import json
import stat
import threading
import time
import uuid
from pathlib import Path

import asyncssh

from labyrinth_tui.cloud.gcp.plan import Action
from labyrinth_tui.model.progress import StepState
from tests.fakes.gce_server import FakeGce
from tests.fakes.gcp_cluster import CALLER_RANGE, Progress, make_cluster

DESCRIPTION = (
    "labyrinth=labyrinth · {}, made by labyrinth-tui; remove with `labyrinth gcp down --cluster labyrinth`"
)
NETWORK = "projects/test-project/global/networks/labyrinth"
SUBNET = "projects/test-project/regions/us-east4/subnetworks/labyrinth-us-east4"


def _bodies(gce: FakeGce, collection: str) -> dict[str, dict[str, object]]:
    return {r.body["name"]: r.body for r in gce.model.calls("POST", collection)}


async def test_up_sends_exactly_the_articles_resources(gce: FakeGce, tmp_path: Path) -> None:
    progress = Progress()
    async with make_cluster(gce, tmp_path) as cluster:
        nodes = await cluster.up(progress)

    assert _bodies(gce, "networks") == {
        "labyrinth": {
            "name": "labyrinth",
            "autoCreateSubnetworks": False,
            "routingConfig": {"routingMode": "REGIONAL"},
            "description": DESCRIPTION.format("VPC network"),
        }
    }
    assert _bodies(gce, "subnetworks") == {
        "labyrinth-us-east4": {
            "name": "labyrinth-us-east4",
            "network": NETWORK,
            "region": "us-east4",
            "ipCidrRange": "10.168.0.0/24",
            "description": DESCRIPTION.format("the nodes' subnet"),
        }
    }
    firewalls = _bodies(gce, "firewalls")
    assert sorted(firewalls) == ["labyrinth-allow-internal", "labyrinth-allow-ssh"]
    assert firewalls["labyrinth-allow-ssh"] == {
        "name": "labyrinth-allow-ssh",
        "network": NETWORK,
        "direction": "INGRESS",
        "priority": 1000,
        "allowed": [{"IPProtocol": "tcp", "ports": ["22"]}],
        "sourceRanges": [CALLER_RANGE],
        "description": DESCRIPTION.format("SSH from the caller's range"),
    }
    assert firewalls["labyrinth-allow-internal"]["allowed"] == [{"IPProtocol": "all"}]
    assert firewalls["labyrinth-allow-internal"]["sourceRanges"] == ["10.168.0.0/24"]
    assert "0.0.0.0/0" not in json.dumps([r.body for r in gce.model.requests])

    public_key = (tmp_path / "gcp" / "labyrinth" / "id_ed25519.pub").read_text().strip()
    instances = _bodies(gce, "instances")
    assert sorted(instances) == ["node-0", "node-1", "node-2"]
    for name, ip in (("node-0", "10.168.0.2"), ("node-1", "10.168.0.4"), ("node-2", "10.168.0.5")):
        body = instances[name]
        assert body["machineType"] == "zones/us-east4-b/machineTypes/e2-medium"
        assert body["labels"] == {"labyrinth": "labyrinth"}
        assert body["metadata"] == {"items": [{"key": "ssh-keys", "value": f"labyrinth:{public_key}"}]}
        assert body["disks"] == [
            {
                "boot": True,
                "autoDelete": True,
                "type": "PERSISTENT",
                "initializeParams": {
                    "sourceImage": "projects/ubuntu-os-cloud/global/images/family/ubuntu-2404-lts-amd64",
                    "diskSizeGb": "32",
                    "diskType": "zones/us-east4-b/diskTypes/pd-standard",
                    "labels": {"labyrinth": "labyrinth"},
                },
            }
        ]
        assert body["networkInterfaces"] == [
            {
                "network": NETWORK,
                "subnetwork": SUBNET,
                "networkIP": ip,
                "accessConfigs": [{"name": "External NAT", "type": "ONE_TO_ONE_NAT"}],
            }
        ]

    # every create carries its own request_id, a real UUID
    ids = [r.query["requestId"] for r in gce.model.requests if r.method == "POST" and "requestId" in r.query]
    assert len(ids) == 7 and len(set(ids)) == 7
    assert all(uuid.UUID(i).version == 4 for i in ids)

    key = tmp_path / "gcp" / "labyrinth" / "id_ed25519"
    external = {
        n: gce.model.get_resource("instances", n)["networkInterfaces"][0]["accessConfigs"][0]["natIP"]
        for n in instances
    }
    assert [(n.name, n.internal_ip, n.external_ip, n.ssh_user, n.private_key_path) for n in nodes] == [
        (name, ip, external[name], "labyrinth", str(key))
        for name, ip in (("node-0", "10.168.0.2"), ("node-1", "10.168.0.4"), ("node-2", "10.168.0.5"))
    ]
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    private = asyncssh.read_private_key(str(key))
    assert private.export_public_key("openssh").decode().strip() == public_key
    saved = json.loads((key.parent / "state.json").read_text())
    assert saved["project"] == "test-project" and [n["external_ip"] for n in saved["nodes"]] == [
        n.external_ip for n in nodes
    ]

    # progress: every resource went pending → running → done, reported on the loop's own thread
    last = progress.last()
    assert {k: s.state for k, s in last.items()} == {
        ("cluster", "network labyrinth"): StepState.DONE,
        ("cluster", "subnet labyrinth-us-east4"): StepState.DONE,
        ("cluster", "firewall labyrinth-allow-ssh"): StepState.DONE,
        ("cluster", "firewall labyrinth-allow-internal"): StepState.DONE,
        ("node-0", "instance"): StepState.DONE,
        ("node-1", "instance"): StepState.DONE,
        ("node-2", "instance"): StepState.DONE,
    }
    assert all(s.fraction == 1.0 and s.log == "created" for s in last.values())
    assert progress.states(("node-1", "instance"))[:2] == [StepState.PENDING, StepState.RUNNING]
    assert progress.threads == {threading.get_ident()}


async def test_a_second_up_creates_nothing_and_returns_the_same_nodes(gce: FakeGce, tmp_path: Path) -> None:
    async with make_cluster(gce, tmp_path) as cluster:
        first = await cluster.up()
        posts = len(gce.model.calls("POST", "instances"))
        progress = Progress()
        plan = await cluster.plan()
        assert {i.action for i in plan.items} == {Action.KEEP}
        second = await cluster.up(progress, plan=plan)
    assert second == first
    assert len(gce.model.calls("POST", "instances")) == posts
    assert [r for r in gce.model.requests if r.method == "POST" and "requestId" in r.query][7:] == []
    assert all(s.state is StepState.DONE and s.log == "exists, ours" for s in progress.steps)


async def test_creates_run_in_parallel_and_in_dependency_order(gce: FakeGce, tmp_path: Path) -> None:
    latency = 0.5
    gce.model.set_latency(create=latency)
    async with make_cluster(gce, tmp_path) as cluster:
        plan = await cluster.plan()
        # the event loop stays free while the client blocks: a ticker never waits long
        gaps: list[float] = []

        async def ticker() -> None:
            last = time.monotonic()
            while True:
                await asyncio.sleep(0.01)  # why: the ticker measures the loop's latency; it waits on nothing
                gaps.append(time.monotonic() - last)
                last = time.monotonic()

        tick = asyncio.create_task(ticker())
        started = time.monotonic()
        await cluster.up(plan=plan)
        took = time.monotonic() - started
        tick.cancel()

    ops = {op.target.rsplit("/", 1)[-1]: op for op in gce.model.ops.values()}
    posts = {r.body["name"]: r.at for r in gce.model.requests if r.method == "POST" and r.body}
    assert posts["labyrinth-us-east4"] >= ops["labyrinth"].done_at
    assert posts["labyrinth-allow-ssh"] >= ops["labyrinth"].done_at
    assert posts["labyrinth-allow-internal"] >= ops["labyrinth"].done_at
    for node in ("node-0", "node-1", "node-2"):
        assert posts[node] >= ops["labyrinth-us-east4"].done_at
    # firewalls do not wait for the subnet; the three instances start together
    assert posts["labyrinth-allow-ssh"] < ops["labyrinth-us-east4"].done_at
    instance_starts = [posts[n] for n in ("node-0", "node-1", "node-2")]
    assert max(instance_starts) - min(instance_starts) < latency / 2
    # three dependency levels, not seven creates in a row
    assert took < 7 * latency
    assert max(gaps) < 0.25, f"the event loop was blocked for {max(gaps):.2f} s"
