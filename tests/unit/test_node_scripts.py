"""The node scripts: bash -n, shellcheck, and what they do when run (sandbox, fake system commands)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator

import pytest

from labyrinth_tui.cloud import ASSETS
from labyrinth_tui.cloud.bootstrap.run import NODE_LIB, script_text
from tests.fakes.node_sandbox import ClusterSandbox

SCRIPTS = ("node-ctl.sh", "node-wrk.sh")
SHIPPED = (*SCRIPTS, NODE_LIB)


@pytest.mark.parametrize("script", SHIPPED)
def test_bash_parses_the_script(script: str) -> None:
    done = subprocess.run(["bash", "-n", str(ASSETS / script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("script", SHIPPED)
def test_shellcheck_is_clean(script: str) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck is not None, "shellcheck is missing: `make setup` installs it (APT_PACKAGES)"
    # -x: each script is checked with node-lib.sh, the library it sources, followed
    done = subprocess.run(
        [shellcheck, "-x", str(ASSETS / script)], capture_output=True, text=True, check=False, cwd=ASSETS
    )
    assert done.returncode == 0, done.stdout


def test_both_scripts_source_the_one_library_of_common_phases() -> None:
    lib = script_text(NODE_LIB)
    assert "run_packages()" in lib and "phase()" in lib
    for script in SCRIPTS:
        text = script_text(script)
        assert '. "${BASH_SOURCE[0]%/*}/node-lib.sh"' in text
        assert "run_packages()" not in text and "phase()" not in text  # one copy, in the library


@pytest.fixture
async def sandbox() -> AsyncIterator[ClusterSandbox]:
    box = ClusterSandbox()
    try:
        yield box
    finally:
        box.close()


async def run_script(
    box: ClusterSandbox, node: str, script: str, env: dict[str, str]
) -> tuple[int, list[str]]:
    path = box.script_path(node, script)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script_text(script))
    box.script_path(node, NODE_LIB).write_text(script_text(NODE_LIB))  # uploaded beside it, as bootstrap does
    status, out, _ = await box.run(node, ["bash", str(path)], env)
    return status, out.splitlines()


CTL_ENV = {"IP": "10.168.0.2", "NODE_NAME": "node-0"}


async def test_control_plane_script_phases_in_order_then_all_skipped(sandbox: ClusterSandbox) -> None:
    status, lines = await run_script(sandbox, "node-0", "node-ctl.sh", CTL_ENV)
    assert status == 0, lines[-10:]
    plan = lines[0].split()[1:]
    assert lines[0].startswith("::plan ") and plan[:2] == ["hostname", "kernel"] and plan[-1] == "node-ready"
    assert [ln.split()[1] for ln in lines if ln.startswith("::done")] == plan
    assert lines[-1] == "::complete node-0 control-plane"
    assert (sandbox.node_root("node-0") / "etc/hostname").read_text().strip() == "node-0"
    assert (sandbox.node_root("node-0") / "root/.kube/config").exists()
    assert (
        "KUBELET_EXTRA_ARGS=--node-ip=10.168.0.2"
        in (sandbox.node_root("node-0") / "etc/default/kubelet").read_text()
    )
    fstab = (sandbox.node_root("node-0") / "etc/fstab").read_text()
    assert "discard" in fstab  # the root filesystem line is left alone
    sources = (sandbox.node_root("node-0") / "etc/apt/sources.list.d/kubernetes.list").read_text()
    assert "https://pkgs.k8s.io/core:/stable:/v1.33/deb/" in sources
    assert "signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg" in sources  # the node's path, no sandbox
    first = len(sandbox.calls("node-0"))

    status, lines = await run_script(sandbox, "node-0", "node-ctl.sh", CTL_ENV)
    assert status == 0
    skipped = [ln.split()[1] for ln in lines if ln.startswith("::skip")]
    assert skipped == plan[:-2]  # everything but the two waits, which only look
    again = [c.line for c in sandbox.calls("node-0")[first:]]
    assert not any(
        c.startswith(("apt-get", "kubeadm", "hostnamectl", "curl", "cilium install")) for c in again
    )


async def test_versions_are_parameters(sandbox: ClusterSandbox) -> None:
    mirror = "https://mirror.example/core:/stable:/v1.32/deb/"
    env = {
        **CTL_ENV,
        "K8S_VERSION": "1.32",
        "CILIUM_VERSION": "1.16.9",
        "POD_CIDR": "10.20.0.0/16",
        "K8S_REPO": mirror,
    }
    status, lines = await run_script(sandbox, "node-0", "node-ctl.sh", env)
    assert status == 0, lines[-5:]
    calls = [c.line for c in sandbox.calls("node-0")]
    assert "cilium install --version 1.16.9" in calls
    assert any("--pod-network-cidr=10.20.0.0/16" in c for c in calls)
    sources = (sandbox.node_root("node-0") / "etc/apt/sources.list.d/cri-o.list").read_text()
    assert "/addons:/cri-o:/stable:/v1.32/deb/" in sources
    assert (sandbox.node_root("node-0") / "var/lib/fake-dpkg/kubeadm").read_text().startswith("1.32.")
    kubernetes_list = (sandbox.node_root("node-0") / "etc/apt/sources.list.d/kubernetes.list").read_text()
    assert f" {mirror} /" in kubernetes_list


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "set IP to the internal address"),
        ({"IP": "10.168.0.2; rm -rf /"}, "is not an IPv4 address"),
        (
            {"IP": "10.168.0.2", "NODE_NAME": "node-1.us-east4-b.c.x.internal"},
            "not a short lowercase hostname",
        ),
        ({"IP": "10.168.0.2", "K8S_VERSION": "latest"}, "give a minor version like 1.33"),
        ({"IP": "10.168.0.2", "CILIUM_VERSION": "1.17"}, "give a version like 1.17.4"),
        ({"IP": "10.168.0.2", "K8S_REPO": "http://mirror.example/deb/"}, "give an https:// URL ending in /"),
    ],
)
async def test_bad_parameters_are_refused_before_anything_changes(
    sandbox: ClusterSandbox, env: dict[str, str], message: str
) -> None:
    status, lines = await run_script(sandbox, "node-0", "node-ctl.sh", env)
    assert status != 0 and any(message in ln for ln in lines), lines
    assert not any(ln.startswith("::plan") for ln in lines)
    assert [c.name for c in sandbox.calls("node-0")] in ([], ["id"])  # nothing but the root check ran


async def test_a_failure_names_its_phase_and_a_rerun_resumes_there(sandbox: ClusterSandbox) -> None:
    sandbox.fail_once("node-0", "cilium install")
    status, lines = await run_script(sandbox, "node-0", "node-ctl.sh", CTL_ENV)
    assert status == 1
    assert lines[-2:] == [
        "Error: Unable to install Cilium: context deadline exceeded",
        "::fail cilium-install 1",
    ]
    status, lines = await run_script(sandbox, "node-0", "node-ctl.sh", CTL_ENV)
    assert status == 0
    assert "::skip kubeadm-init" in lines and "::phase cilium-install" in lines


async def test_worker_without_a_join_config_stops_before_the_join(sandbox: ClusterSandbox) -> None:
    env = {"IP": "10.168.0.4", "NODE_NAME": "node-1"}
    status, lines = await run_script(sandbox, "node-1", "node-wrk.sh", env)
    assert status == 0
    assert lines[0] == "::plan hostname kernel repos packages crio kubelet"
    assert "::complete node-1 worker-unjoined" in lines
    assert any("kubeadm token create --print-join-command" in ln for ln in lines)
    assert not any(c.name in ("kubeadm", "kubectl", "cilium") for c in sandbox.calls("node-1"))


async def test_worker_with_a_missing_join_config_file_is_refused(sandbox: ClusterSandbox) -> None:
    env = {"IP": "10.168.0.4", "NODE_NAME": "node-1", "JOIN_CONFIG": "/etc/labyrinth/join.yaml"}
    status, lines = await run_script(sandbox, "node-1", "node-wrk.sh", env)
    assert status == 2 and "node-wrk.sh: JOIN_CONFIG=/etc/labyrinth/join.yaml does not exist" in lines
