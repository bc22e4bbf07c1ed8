"""`up` when GCE misbehaves: 409 (ours / someone else's), failed and stuck operations, lost answers, 5xx,
quota — each ends in a clear error or converges, and a re-run finishes the job."""

from __future__ import annotations

from pathlib import Path

import pytest

from labyrinth_tui.cloud.gcp.errors import (
    GcpForeignResourceError,
    GcpProvisionError,
    GcpQuotaError,
    GcpTimeoutError,
)
from labyrinth_tui.cloud.gcp.plan import Action
from labyrinth_tui.model.progress import StepState
from tests.fakes.gce_model import Fault
from tests.fakes.gce_server import FakeGce
from tests.fakes.gcp_cluster import Progress, make_cluster

NODES = ["node-0", "node-1", "node-2"]


def _request_ids(gce: FakeGce, collection: str, name: str) -> list[str]:
    return [r.query["requestId"] for r in gce.model.calls("POST", collection) if r.body["name"] == name]


def _insert_ops(gce: FakeGce, name: str) -> int:
    return sum(
        1 for op in gce.model.ops.values() if op.op_type == "insert" and op.target.endswith(f"/{name}")
    )


async def test_409_on_a_resource_of_ours_is_adopted(gce: FakeGce, tmp_path: Path) -> None:
    gce.model.add_fault(Fault("conflict_ours", "instances", "node-1"))
    progress = Progress()
    async with make_cluster(gce, tmp_path) as cluster:
        nodes = await cluster.up(progress)
    step = progress.last()[("node-1", "instance")]
    assert step.state is StepState.DONE
    assert step.log.startswith("adopted: it already existed")
    assert [n.name for n in nodes] == NODES
    assert nodes[1].external_ip == "203.0.113.99"  # the one that already existed, not a new one
    assert gce.model.names("instances") == NODES


async def test_409_on_someone_elses_resource_is_refused_and_the_rest_goes_on(
    gce: FakeGce, tmp_path: Path
) -> None:
    gce.model.add_fault(Fault("conflict_foreign", "firewalls", "labyrinth-allow-ssh"))
    progress = Progress()
    async with make_cluster(gce, tmp_path) as cluster:
        with pytest.raises(GcpProvisionError) as caught:
            await cluster.up(progress)
    failure = caught.value.failures["firewall labyrinth-allow-ssh"]
    assert isinstance(failure, GcpForeignResourceError)
    assert "not made by labyrinth-tui" in str(failure)
    assert progress.last()[("cluster", "firewall labyrinth-allow-ssh")].state is StepState.FAILED
    # the foreign rule is untouched and everything else exists
    assert gce.model.get_resource("firewalls", "labyrinth-allow-ssh")["description"] == "someone else's"
    assert gce.model.names("instances") == NODES
    assert gce.model.calls("DELETE", "firewalls") == []


async def test_a_foreign_resource_seen_by_the_plan_stops_up_before_anything_is_made(
    gce: FakeGce, tmp_path: Path
) -> None:
    # the article's own hand-made network, say, with the same name
    gce.model.seed(
        "test-project", "networks", "global", {"name": "labyrinth", "description": "made in the console"}
    )
    async with make_cluster(gce, tmp_path) as cluster:
        plan = await cluster.plan()
        assert [i.action for i in plan.items if i.ref.name == "labyrinth"] == [Action.CONFLICT]
        with pytest.raises(GcpForeignResourceError, match="network labyrinth"):
            await cluster.up(plan=plan)
    assert [r for r in gce.model.requests if r.method != "GET"] == []
    assert not (tmp_path / "gcp" / "labyrinth" / "id_ed25519").exists()


async def test_an_operation_ending_in_error_fails_that_node_and_a_rerun_converges(
    gce: FakeGce, tmp_path: Path
) -> None:
    gce.model.add_fault(Fault("op_error", "instances", "node-2"))
    progress = Progress()
    async with make_cluster(gce, tmp_path) as cluster:
        with pytest.raises(GcpProvisionError, match="ZONE_RESOURCE_POOL_EXHAUSTED") as caught:
            await cluster.up(progress)
        assert list(caught.value.failures) == ["instance node-2"]
        assert progress.last()[("node-2", "instance")].state is StepState.FAILED
        assert gce.model.names("instances") == ["node-0", "node-1"]

        posts_before = len(gce.model.calls("POST", "instances"))
        nodes = await cluster.up()
    assert [n.name for n in nodes] == NODES
    assert len(gce.model.calls("POST", "instances")) == posts_before + 1  # only node-2, once more
    assert gce.model.names("instances") == NODES


async def test_quota_exceeded_is_reported_as_such(gce: FakeGce, tmp_path: Path) -> None:
    gce.model.add_fault(Fault("quota", "instances", "node-0"))
    async with make_cluster(gce, tmp_path) as cluster:
        with pytest.raises(GcpProvisionError) as caught:
            await cluster.up()
    failure = caught.value.failures["instance node-0"]
    assert isinstance(failure, GcpQuotaError)
    assert "Quota 'CPUS' exceeded" in str(failure)
    assert "ask for more quota" in str(failure)


async def test_a_stuck_operation_times_out_skips_its_dependents_and_a_rerun_converges(
    gce: FakeGce, tmp_path: Path
) -> None:
    gce.model.wait_cap = 0.2
    gce.model.add_fault(Fault("stuck", "subnetworks"))
    progress = Progress()
    async with make_cluster(gce, tmp_path, op_timeout=0.6) as cluster:
        with pytest.raises(GcpProvisionError) as caught:
            await cluster.up(progress)
        assert list(caught.value.failures) == ["subnet labyrinth-us-east4"]
        assert isinstance(caught.value.failures["subnet labyrinth-us-east4"], GcpTimeoutError)
        last = progress.last()
        assert {last[(n, "instance")].state for n in NODES} == {StepState.SKIPPED}
        assert "subnet labyrinth-us-east4 did not finish" in last[("node-0", "instance")].log
        assert gce.model.calls("POST", "instances") == []
        assert gce.model.names("firewalls") == ["labyrinth-allow-internal", "labyrinth-allow-ssh"]

        gce.model.release_stuck()  # the operation finishes after all, as GCE's usually do
        nodes = await cluster.up()
    assert [n.name for n in nodes] == NODES
    assert len(gce.model.calls("POST", "subnetworks")) == 1


async def test_a_lost_answer_is_retried_with_the_same_request_id_and_acted_on_once(
    gce: FakeGce, tmp_path: Path
) -> None:
    gce.model.add_fault(Fault("hang", "networks", seconds=1.5))
    async with make_cluster(gce, tmp_path, call_timeout=0.5) as cluster:
        await cluster.up()
    ids = _request_ids(gce, "networks", "labyrinth")
    assert len(ids) == 2 and ids[0] == ids[1]
    assert _insert_ops(gce, "labyrinth") == 1
    assert gce.model.names("networks") == ["labyrinth"]


async def test_5xx_then_success_keeps_the_request_id(gce: FakeGce, tmp_path: Path) -> None:
    gce.model.add_fault(Fault("unavailable", "instances", "node-0", times=2))
    async with make_cluster(gce, tmp_path) as cluster:
        nodes = await cluster.up()
    ids = _request_ids(gce, "instances", "node-0")
    assert len(ids) == 3 and len(set(ids)) == 1
    assert _insert_ops(gce, "node-0") == 1
    assert [n.name for n in nodes] == NODES
