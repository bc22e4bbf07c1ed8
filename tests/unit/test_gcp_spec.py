"""The cluster spec, the project/ADC discovery and the local state: clear errors, no network, 0600 keys."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labyrinth_tui.cloud.gcp.auth import find_adc, find_project, load_credentials, resolve_project
from labyrinth_tui.cloud.gcp.errors import GcpCredentialsError, GcpError, GcpSpecError
from labyrinth_tui.cloud.gcp.spec import ClusterSpec, parse_source_range
from labyrinth_tui.cloud.gcp.state import StateDir, config_root
from labyrinth_tui.doctor import check_gcp_credentials, run_checks

PROJECT_VARS = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT")


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every attempt to open a network connection, refused and recorded (a library may swallow the error)."""
    attempts: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield attempts


@pytest.fixture
def gcloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, connects: list[Any]) -> Iterator[Path]:
    """An empty gcloud config dir, no project in the environment, and no network call allowed."""
    for var in (*PROJECT_VARS, "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_ACTIVE_CONFIG_NAME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    yield tmp_path / "gcloud"
    assert connects == [], "a network connection was attempted"


def _write_gcloud_project(base: Path, project: str, config: str = "default") -> None:
    (base / "configurations").mkdir(parents=True, exist_ok=True)
    (base / "active_config").write_text(config)
    (base / "configurations" / f"config_{config}").write_text(
        f"[core]\naccount = a@example.com\nproject = {project}\n"
    )


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"cluster": "Labyrinth"}, "cluster name 'Labyrinth'"),
        ({"cluster": "a-very-long-cluster-name-x"}, "1-22 lowercase letters"),
        ({"project": ""}, "no project"),
        ({"zone": "europe-west1-b"}, "zone 'europe-west1-b' is not in region 'us-east4'"),
        ({"machine_type": "e2 medium"}, "machine type 'e2 medium'"),
        ({"disk_size_gb": 5}, "disk size 5 GB"),
        ({"nodes": (("node-0", "10.168.0.1"),)}, "10.168.0.1 is not a usable address of 10.168.0.0/24"),
        ({"nodes": (("node-0", "10.168.1.2"),)}, "10.168.1.2 is not a usable address"),
        ({"nodes": (("node-0", "10.168.0.2"), ("node-1", "10.168.0.2"))}, "must be unique"),
        ({"ssh_user": "Root"}, "ssh user 'Root'"),
    ],
)
def test_a_spec_that_cannot_work_says_why(change: dict[str, Any], reason: str) -> None:
    spec = ClusterSpec(**{"project": "p", **change})
    with pytest.raises(GcpSpecError, match=reason.replace("(", r"\(").replace(".", r"\.")):
        spec.validate()


def test_the_default_spec_is_the_articles() -> None:
    spec = ClusterSpec(project="p", ssh_source_ranges=("203.0.113.7/32",))
    spec.validate(for_up=True)
    assert (spec.network_name, spec.subnet_cidr, spec.region, spec.zone) == (
        "labyrinth",
        "10.168.0.0/24",
        "us-east4",
        "us-east4-b",
    )
    assert spec.nodes == (("node-0", "10.168.0.2"), ("node-1", "10.168.0.4"), ("node-2", "10.168.0.5"))
    assert spec.broad_warning() == ""
    with pytest.raises(GcpSpecError, match="labyrinth does not guess it"):
        ClusterSpec(project="p").validate(for_up=True)
    assert "WARNING" in ClusterSpec(project="p", ssh_source_ranges=("0.0.0.0/0",)).broad_warning()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("203.0.113.7", "203.0.113.7/32"), ("203.0.113.0/24", "203.0.113.0/24"), (" 10.0.0.0/8 ", "10.0.0.0/8")],
)
def test_source_ranges(text: str, expected: str) -> None:
    assert parse_source_range(text) == expected


@pytest.mark.parametrize("text", ["203.0.113.7/24", "example.com", "2001:db8::/32", ""])
def test_bad_source_ranges(text: str) -> None:
    with pytest.raises(GcpSpecError, match="--ssh-source-range"):
        parse_source_range(text)


def test_project_comes_from_the_flag_then_env_then_gcloud(
    gcloud: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_project() is None
    with pytest.raises(GcpCredentialsError, match="pass --project ID, set GOOGLE_CLOUD_PROJECT"):
        resolve_project(None)
    _write_gcloud_project(gcloud, "from-gcloud", config="work")
    found = find_project()
    assert found is not None and found.value == "from-gcloud" and "gcloud config 'work'" in found.source
    monkeypatch.setenv("CLOUDSDK_CORE_PROJECT", "from-env")
    assert resolve_project(None) == "from-env"
    assert resolve_project("from-flag") == "from-flag"


def test_adc_is_found_from_files_only(gcloud: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_adc() is None
    gcloud.mkdir(parents=True)
    (gcloud / "application_default_credentials.json").write_text("{}")
    found = find_adc()
    assert found is not None and found.source == "gcloud application-default login"
    key = tmp_path / "sa.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
    assert find_adc() is None  # named but missing: ADC would fail too
    key.write_text("{}")
    found = find_adc()
    assert found is not None and found.value == str(key)


def test_missing_adc_is_a_clear_error(gcloud: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.compute_engine import _metadata

    monkeypatch.setattr(_metadata, "_NO_GCE_CHECK", True)  # not a GCE VM: do not ask a metadata server
    with pytest.raises(GcpCredentialsError, match="gcloud auth application-default login"):
        load_credentials(None)
    assert type(load_credentials("http://127.0.0.1:1")).__name__ == "AnonymousCredentials"


def test_doctor_reports_gcp_credentials_without_the_network(gcloud: Path) -> None:
    check = check_gcp_credentials()
    assert (check.name, check.ok, check.required) == ("gcp credentials", False, False)
    assert check.detail == "no ADC file; no project"
    assert "gcloud auth application-default login" in check.fix and "GOOGLE_CLOUD_PROJECT" in check.fix
    _write_gcloud_project(gcloud, "lab-project")
    (gcloud / "application_default_credentials.json").write_text("{}")
    check = check_gcp_credentials()
    assert check.ok and "project 'lab-project'" in check.detail
    assert any(c.name == "gcp credentials" and not c.required for c in run_checks())


def test_the_key_is_generated_once_with_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABYRINTH_CONFIG_DIR", str(tmp_path / "cfg"))
    assert config_root() == tmp_path / "cfg"
    state = StateDir("demo")
    assert state.path == tmp_path / "cfg" / "gcp" / "demo"
    public = state.ensure_key("labyrinth")
    assert public.startswith("ssh-ed25519 ") and public.endswith(" labyrinth@labyrinth-demo")
    assert stat.S_IMODE(state.key_path.stat().st_mode) == 0o600
    state.key_path.chmod(0o644)
    assert state.ensure_key("labyrinth") == public  # the same key, its mode put back
    assert stat.S_IMODE(state.key_path.stat().st_mode) == 0o600
    state.state_path.write_text("{not json")
    with pytest.raises(GcpError, match=r"state\.json is unreadable"):
        state.load()
    state.state_path.write_text(json.dumps({"cluster": "demo", "project": "p", "nodes": []}))
    loaded = state.load()
    assert loaded is not None and loaded.project == "p"
    (state.path / "notes.txt").write_text("mine")
    state.remove()
    assert sorted(p.name for p in state.path.iterdir()) == ["notes.txt"]
