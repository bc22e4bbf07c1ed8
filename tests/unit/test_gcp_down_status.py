"""`plan`, `status` and `down` against the fake GCE: cost from the dated table, age, only-ours deletes in
dependency order, nothing left afterwards — with or without the local state."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from labyrinth_tui.cloud.gcp.errors import GcpProvisionError
from labyrinth_tui.cloud.gcp.plan import Action
from labyrinth_tui.cloud.gcp.prices import load_prices
from labyrinth_tui.model.progress import StepState
from tests.fakes.gce_model import Fault
from tests.fakes.gce_server import FakeGce
from tests.fakes.gcp_cluster import Progress, make_cluster

FOREIGN_INSTANCE = {
    "name": "web-1",
    "labels": {"team": "web"},
    "status": "RUNNING",
    "machineType": "zones/us-east4-b/machineTypes/e2-small",
    "networkInterfaces": [
        {"network": "projects/test-project/global/networks/default", "networkIP": "10.0.0.9"}
    ],
}
FOREIGN_FIREWALL = {
    "name": "default-allow-ssh",
    "description": "the console's",
    "network": "global/networks/default",
}


async def test_plan_prices_the_cluster_from_the_dated_table(gce: FakeGce, tmp_path: Path) -> None:
    table = load_prices(tmp_path)
    async with make_cluster(gce, tmp_path) as cluster:
        plan = await cluster.plan()
    per_node = (
        table.machine_hourly("us-east4", "e2-medium")  # type: ignore[operator]
        + table.disk_hourly("us-east4", "pd-standard", 32)
        + table.ip_hourly("us-east4")
    )
    assert plan.estimate is not None
    assert plan.estimate.hourly == pytest.approx(3 * per_node)
    assert [i.action for i in plan.items] == [Action.CREATE] * 7
    text = "\n".join(plan.lines())
    assert f"prices as of {table.as_of.isoformat()}" in text
    assert f"${3 * per_node:.4f}/hour" in text
    assert json.loads(json.dumps(plan.to_json()))["hourly_cost"] == pytest.approx(3 * per_node, abs=1e-6)


async def test_a_price_table_in_the_config_dir_overrides_the_shipped_one(
    gce: FakeGce, tmp_path: Path
) -> None:
    override = tmp_path / "gcp" / "prices.json"
    override.parent.mkdir(parents=True)
    regions = {
        "us-east4": {"machine_hourly": {"e2-medium": 1.0}, "disk_gb_monthly": {}, "external_ipv4_hourly": 0}
    }
    override.write_text(json.dumps({"as_of": "2020-01-02", "regions": regions}))
    async with make_cluster(gce, tmp_path) as cluster:
        plan = await cluster.plan()
    assert plan.estimate is not None and plan.estimate.hourly == pytest.approx(3.0)
    text = "\n".join(plan.lines())
    assert "prices as of 2020-01-02" in text and str(override) in text and "days old" in text
    assert "32 GB pd-standard boot disk: NOT IN THE PRICE TABLE" in text


async def test_status_shows_age_and_what_the_cluster_has_cost(gce: FakeGce, tmp_path: Path) -> None:
    async with make_cluster(gce, tmp_path) as cluster:
        plan = await cluster.plan()
        await cluster.up(plan=plan)
        gce.model.backdate(2 * 3600)
        status = await cluster.status()
    assert plan.estimate is not None
    assert status.hourly == pytest.approx(plan.estimate.hourly)  # what it costs is what the plan said
    assert status.accrued == pytest.approx(2 * plan.estimate.hourly, rel=0.02)
    kinds = [i.ref.kind for i in status.items]
    assert (
        kinds
        == ["network", "subnet", "firewall", "firewall", "instance", "instance", "instance"] + ["disk"] * 3
    )
    assert all(7200 <= i.age_seconds < 7260 for i in status.items)
    lines = status.lines()
    node0 = next(line for line in lines if line.startswith("  instance node-0"))
    assert re.search(r"RUNNING\s+age\s+2h00m", node0) and "internal_ip=10.168.0.2" in node0
    assert lines[-1].startswith(f"running cost ${plan.estimate.hourly:.4f}/hour")


async def test_down_deletes_only_ours_in_dependency_order_and_leaves_nothing(
    gce: FakeGce, tmp_path: Path
) -> None:
    gce.model.seed("test-project", "instances", "us-east4-b", dict(FOREIGN_INSTANCE))
    gce.model.seed("test-project", "firewalls", "global", dict(FOREIGN_FIREWALL))
    progress = Progress()
    async with make_cluster(gce, tmp_path) as cluster:
        await cluster.up()
        plan = await cluster.plan_down()
        await cluster.down(progress, plan=plan)

    assert gce.model.names("instances") == ["web-1"]
    assert gce.model.names("firewalls") == ["default-allow-ssh"]
    assert gce.model.names("networks") == gce.model.names("subnetworks") == gce.model.names("disks") == []
    deletes = {r.path.rsplit("/", 1)[-1]: r.at for r in gce.model.requests if r.method == "DELETE"}
    ours = ["node-0", "node-1", "node-2", "labyrinth-allow-ssh", "labyrinth-allow-internal"]
    assert sorted(deletes) == sorted([*ours, "labyrinth-us-east4", "labyrinth"])
    ops = {op.target.rsplit("/", 1)[-1]: op for op in gce.model.ops.values() if op.op_type == "delete"}
    for node in ("node-0", "node-1", "node-2"):
        assert deletes["labyrinth-us-east4"] >= ops[node].done_at
    for before_network in ("labyrinth-us-east4", "labyrinth-allow-ssh", "labyrinth-allow-internal"):
        assert deletes["labyrinth"] >= ops[before_network].done_at
    last = progress.last()
    assert last[("cluster", "nothing left")].state is StepState.DONE
    assert all(s.state is StepState.DONE for s in last.values())
    assert not (tmp_path / "gcp" / "labyrinth").exists()  # key and state go with the cluster


async def test_down_finds_the_cluster_without_any_local_state(gce: FakeGce, tmp_path: Path) -> None:
    async with make_cluster(gce, tmp_path / "laptop") as cluster:
        await cluster.up()
    async with make_cluster(gce, tmp_path / "another-machine") as stranger:
        plan = await stranger.plan_down()
        assert len(plan.refs(Action.DELETE)) == 7
        assert plan.stops_hourly > 0
        await stranger.down(plan=plan)
    assert gce.model.names("instances") == gce.model.names("networks") == []


async def test_a_failed_delete_keeps_what_depends_on_it_and_a_rerun_converges(
    gce: FakeGce, tmp_path: Path
) -> None:
    progress = Progress()
    async with make_cluster(gce, tmp_path) as cluster:
        await cluster.up()
        gce.model.add_fault(Fault("op_error", "subnetworks", method="delete"))
        with pytest.raises(GcpProvisionError) as caught:
            await cluster.down(progress)
        assert "subnet labyrinth-us-east4" in caught.value.failures
        assert progress.last()[("cluster", "network labyrinth")].state is StepState.SKIPPED
        assert progress.last()[("cluster", "nothing left")].state is StepState.FAILED
        assert gce.model.names("networks") == ["labyrinth"] and gce.model.names("instances") == []
        assert (tmp_path / "gcp" / "labyrinth" / "state.json").exists()  # kept until nothing is left

        await cluster.down()
    assert gce.model.names("networks") == gce.model.names("subnetworks") == []


async def test_down_of_nothing_says_so(gce: FakeGce, tmp_path: Path) -> None:
    progress = Progress()
    async with make_cluster(gce, tmp_path) as cluster:
        plan = await cluster.down(progress)
    assert not plan.changes
    assert plan.lines()[1:] == ["  nothing of this cluster exists"]
    assert [s.state for s in progress.steps] == [StepState.RUNNING, StepState.DONE]
    assert [r for r in gce.model.requests if r.method != "GET"] == []


async def test_up_without_the_broad_flag_closes_the_articles_rules_left_from_before(
    gce: FakeGce, tmp_path: Path
) -> None:
    async with make_cluster(gce, tmp_path, article_firewall=True) as broad:
        assert "WARNING" in broad.spec.broad_warning()
        await broad.up()
    anywhere = {
        n
        for n in gce.model.names("firewalls")
        if gce.model.get_resource("firewalls", n)["sourceRanges"] == ["0.0.0.0/0"]
    }
    assert anywhere == {"labyrinth-allow-ssh-anywhere", "labyrinth-allow-all-anywhere"}
    async with make_cluster(gce, tmp_path) as narrow:
        plan = await narrow.plan()
        assert sorted(r.name for r in plan.refs(Action.DELETE)) == sorted(anywhere)
        await narrow.up(plan=plan)
    assert gce.model.names("firewalls") == ["labyrinth-allow-internal", "labyrinth-allow-ssh"]
