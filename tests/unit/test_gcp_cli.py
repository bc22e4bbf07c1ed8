"""`labyrinth gcp …` as a user types it, against the fake GCE ($LABYRINTH_GCE_ENDPOINT); state in tmp."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from labyrinth_tui.cli import main
from tests.fakes.gce_server import FakeGce

PROJECT = ["--project", "test-project"]
SSH = ["--ssh-source-range", "198.51.100.7"]


@pytest.fixture
def env(gce: FakeGce, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in (
        "GOOGLE_CLOUD_PROJECT",
        "CLOUDSDK_CORE_PROJECT",
        "GCLOUD_PROJECT",
        "GOOGLE_APPLICATION_CREDENTIALS",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # an empty gcloud: no project there
    monkeypatch.setenv("LABYRINTH_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("LABYRINTH_GCE_ENDPOINT", gce.endpoint)
    return tmp_path / "config"


def gcp(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["gcp", *args], input=input)


def _mutations(gce: FakeGce) -> list[str]:
    return [f"{r.method} {r.path}" for r in gce.model.requests if r.method != "GET"]


def test_every_gcp_command_has_one_line_help() -> None:
    result = CliRunner().invoke(main, ["gcp", "--help"])
    assert result.exit_code == 0
    for name in ("plan", "up", "status", "down"):
        assert name in result.output
        sub = CliRunner().invoke(main, ["gcp", name, "--help"])
        assert sub.exit_code == 0 and "--json" in sub.output


def test_plan_json_lists_the_creates_and_the_cost(gce: FakeGce, env: Path) -> None:
    result = gcp("plan", *PROJECT, *SSH, "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [(i["kind"], i["name"], i["action"]) for i in plan["items"]][-3:] == [
        ("instance", "node-0", "create"),
        ("instance", "node-1", "create"),
        ("instance", "node-2", "create"),
    ]
    assert plan["hourly_cost"] > 0 and plan["prices"].startswith("prices as of ")
    assert _mutations(gce) == []


def test_plan_shows_the_addresses_it_pins(gce: FakeGce, env: Path) -> None:
    """The node scripts and the article use 10.168.0.0/24 and these three addresses: the plan says so."""
    result = gcp("plan", *PROJECT, *SSH)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(ln.split()[:2] == ["+", "create"] and ln.endswith("  10.168.0.0/24") for ln in lines)
    for node, ip in (("node-0", "10.168.0.2"), ("node-1", "10.168.0.4"), ("node-2", "10.168.0.5")):
        assert any(f"{node}  internal IP {ip}" in ln for ln in lines), lines
    assert _mutations(gce) == []


def test_up_without_an_ssh_range_refuses_before_calling_gce(gce: FakeGce, env: Path) -> None:
    result = gcp("up", *PROJECT, "--yes")
    assert result.exit_code == 1
    assert "--ssh-source-range" in result.output and "does not guess" in result.output
    assert gce.model.requests == []


def test_a_bad_ssh_range_is_a_clear_error(gce: FakeGce, env: Path) -> None:
    result = gcp("plan", *PROJECT, "--ssh-source-range", "198.51.100.7/24")
    assert result.exit_code == 1
    assert "is not an address range" in result.output and "host bits set" in result.output


def test_up_asks_first_and_a_no_creates_nothing(gce: FakeGce, env: Path) -> None:
    result = gcp("up", *PROJECT, *SSH, input="n\n")
    assert result.exit_code == 1
    assert "Create these? The cluster costs ≈ $" in result.output
    assert "aborted: nothing was created" in result.output
    assert _mutations(gce) == []


def test_up_status_down_round_trip(gce: FakeGce, env: Path) -> None:
    up = gcp("up", *PROJECT, *SSH, "--yes", "--json")
    assert up.exit_code == 0, up.output
    nodes = json.loads(up.stdout)
    key = env / "gcp" / "labyrinth" / "id_ed25519"
    assert [(n["name"], n["internal_ip"], n["private_key_path"]) for n in nodes] == [
        ("node-0", "10.168.0.2", str(key)),
        ("node-1", "10.168.0.4", str(key)),
        ("node-2", "10.168.0.5", str(key)),
    ]
    assert "✓ node-1 · instance  created" in up.stderr  # progress goes to stderr with --json

    # the project now comes from state.json: no --project needed to look or to clean up
    status = gcp("status", "--json")
    assert status.exit_code == 0, status.output
    resources = json.loads(status.stdout)["resources"]
    assert sorted(r["name"] for r in resources if r["kind"] == "instance") == ["node-0", "node-1", "node-2"]
    assert json.loads(status.stdout)["hourly_cost"] > 0

    down = gcp("down", "--yes")
    assert down.exit_code == 0, down.output
    assert "nothing of 'labyrinth' is left in project 'test-project'" in down.output
    assert gce.model.names("instances") == gce.model.names("networks") == []
    assert not key.exists()


def test_up_with_the_articles_firewall_warns_and_opens_it(gce: FakeGce, env: Path) -> None:
    result = gcp("up", *PROJECT, "--article-firewall", "--yes")
    assert result.exit_code == 0, result.output
    assert "WARNING: labyrinth-allow-ssh-anywhere, labyrinth-allow-all-anywhere" in result.output
    ranges = {r.body["name"]: r.body["sourceRanges"] for r in gce.model.calls("POST", "firewalls")}
    assert ranges == {
        "labyrinth-allow-internal": ["10.168.0.0/24"],
        "labyrinth-allow-ssh-anywhere": ["0.0.0.0/0"],
        "labyrinth-allow-all-anywhere": ["0.0.0.0/0"],
    }


def test_no_project_anywhere_is_a_clear_error(gce: FakeGce, env: Path) -> None:
    result = gcp("plan", *SSH)
    assert result.exit_code == 1
    assert "no GCP project" in result.output and "gcloud config set project" in result.output
    assert gce.model.requests == []


def test_a_failed_up_says_what_failed_and_how_to_converge(gce: FakeGce, env: Path) -> None:
    from tests.fakes.gce_model import Fault

    gce.model.add_fault(Fault("quota", "instances", "node-2"))
    result = gcp("up", *PROJECT, *SSH, "--yes")
    assert result.exit_code == 1
    assert "✗ node-2 · instance" in result.output
    assert "instance node-2: create instance node-2: quota exceeded" in result.output
    assert "Re-run `labyrinth gcp up`: it converges" in result.output
    again = gcp("up", *PROJECT, *SSH, "--yes")
    assert again.exit_code == 0, again.output
    assert "= keep     instance node-0" in again.output and "+ create   instance node-2" in again.output


def test_a_name_taken_by_someone_else_is_refused_without_asking(gce: FakeGce, env: Path) -> None:
    gce.model.seed("test-project", "networks", "global", {"name": "labyrinth", "description": "made by hand"})
    result = gcp("up", *PROJECT, *SSH)  # no --yes and no input: a question would abort instead
    assert result.exit_code == 1
    assert "! conflict network labyrinth" in result.output
    assert "refusing to touch resources that are not ours" in result.output
    assert "Create these?" not in result.output
    assert _mutations(gce) == []
