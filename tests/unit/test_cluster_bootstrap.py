"""bootstrap() against three fake VMs over real SSH: the real node scripts with fake system commands."""

from __future__ import annotations

import stat

import pytest
import yaml

from labyrinth_tui.cloud.bootstrap.run import BootstrapError, BootstrapFailed, bootstrap, script_text
from labyrinth_tui.model.progress import Step, StepState
from tests.fakes.cluster_vms import Vms, last_states

CTL_PHASES = [
    "hostname",
    "kernel",
    "repos",
    "packages",
    "crio",
    "kubelet",
    "kubeadm-init",
    "kubeconfig",
    "cilium-cli",
    "cilium-install",
    "cilium-ready",
    "node-ready",
]
WRK_PHASES = ["hostname", "kernel", "repos", "packages", "crio", "kubelet", "join"]
STREAM_CLEANUP = ("kill", "sh")  # NodeSession.stream makes sure nothing of a script is left running


async def run(vms: Vms, steps: list[Step]) -> object:
    async with vms.nodes() as (control, workers):
        return await bootstrap(control, workers, steps.append, config_dir=vms.tmp / "config")


async def test_the_article_flow_in_order_with_its_parameters(vms: Vms) -> None:
    steps: list[Step] = []
    result = await run(vms, steps)
    states = last_states(steps)
    assert all(states[("node-0", p)] is StepState.DONE for p in CTL_PHASES)
    for worker in ("node-1", "node-2"):
        assert all(states[(worker, p)] is StepState.DONE for p in WRK_PHASES), worker
    for step in ("join command", "nodes ready", "labels", "admin.conf"):
        assert states[("cluster", step)] is StepState.DONE

    # node-0: upload, node-ctl.sh with the article's parameters, join command, wait, labels, admin.conf
    node0 = [e.argv[:3] for e in vms["node-0"].execs if e.argv[0] not in STREAM_CLEANUP]
    assert node0 == [
        ("install", "-d", "-m"),
        ("dd", "of=/usr/local/lib/labyrinth/node-lib.sh", "status=none"),
        ("dd", "of=/usr/local/lib/labyrinth/node-ctl.sh", "status=none"),
        ("bash", "/usr/local/lib/labyrinth/node-ctl.sh"),
        ("kubeadm", "token", "create"),
        ("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "wait"),
        ("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "label"),
        ("kubectl", "--kubeconfig=/etc/kubernetes/admin.conf", "label"),
        ("cat", "/etc/kubernetes/admin.conf"),
    ]
    assert all(e.sudo for e in vms["node-0"].execs)  # the stream's cleanup too: root's processes
    script = vms["node-0"].runs_of("bash")[0]
    assert script.env["IP"] == "10.168.0.2" and script.env["NODE_NAME"] == "node-0"
    assert (script.env["K8S_VERSION"], script.env["CILIUM_VERSION"], script.env["POD_CIDR"]) == (
        "1.33",
        "1.17.4",
        "10.10.0.0/16",
    )
    assert vms["node-0"].execs[1].stdin == script_text("node-lib.sh")
    uploaded = vms["node-0"].execs[2].stdin
    assert (
        uploaded
        == script_text("node-ctl.sh")
        == (vms["node-0"].root / "usr/local/lib/labyrinth/node-ctl.sh").read_text()
    )
    calls = [c.line for c in vms.sandbox.calls("node-0")]
    init = next(c for c in calls if c.startswith("kubeadm init"))
    assert "--apiserver-advertise-address=10.168.0.2" in init and "--pod-network-cidr=10.10.0.0/16" in init
    assert "--node-name=node-0" in init and "--cri-socket=unix:///var/run/crio/crio.sock" in init
    assert "cilium install --version 1.17.4" in calls
    assert (
        calls.index("hostnamectl set-hostname node-0")
        < calls.index(init)
        < calls.index("cilium install --version 1.17.4")
    )
    wait = vms["node-0"].runs_of("kubectl")[0].argv
    assert "node/node-1" in wait and "node/node-2" in wait

    # the workers: short hostnames (the article's forgotten line), joined with their own short names
    for name, ip in (("node-1", "10.168.0.4"), ("node-2", "10.168.0.5")):
        assert (vms[name].root / "etc/hostname").read_text().strip() == name
        assert f"{ip} {name}" in (vms[name].root / "etc/hosts").read_text()
        worker_calls = [c.line for c in vms.sandbox.calls(name)]
        assert f"kubeadm join --config {vms[name].root}/etc/labyrinth/join.yaml" in worker_calls
        assert not any(c.startswith("kubeadm init") or c.startswith("cilium") for c in worker_calls)
        upload = next(e for e in vms[name].execs if e.argv[0] == "dd" and "join.yaml" in e.argv[1])
        join = yaml.safe_load(upload.stdin)
        assert join["nodeRegistration"]["name"] == name
        assert join["discovery"]["bootstrapToken"]["apiServerEndpoint"] == "10.168.0.2:6443"
        assert not (vms[name].root / "etc/labyrinth/join.yaml").exists()  # the token did not stay behind
    labels = {p.name: p.read_text().strip() for p in (vms.sandbox.shared / "labels").iterdir()}
    assert labels == {"node-1": "nodelabel=node-wrk-1", "node-2": "nodelabel=node-wrk-2"}

    admin = vms.tmp / "config" / "admin.conf"
    assert result.admin_conf == admin and result.labels == {"node-1": "node-wrk-1", "node-2": "node-wrk-2"}
    assert stat.S_IMODE(admin.stat().st_mode) == 0o600
    assert stat.S_IMODE(admin.parent.stat().st_mode) == 0o700
    assert admin.read_text() == (vms["node-0"].root / "etc/kubernetes/admin.conf").read_text()


async def test_worker_joins_overlap_in_time(vms: Vms) -> None:
    # each fake `kubeadm join` waits until both joins have started: run one after the other, they fail
    vms.sandbox.write_shared("join_barrier", "2")
    steps: list[Step] = []
    await run(vms, steps)
    joins = {
        name: [c for c in vms.sandbox.calls(name) if c.name == "kubeadm"] for name in ("node-1", "node-2")
    }
    assert len(joins["node-1"]) == len(joins["node-2"]) == 1
    # a phase reports RUNNING again (with its latest line) every 0.25 s it runs: take each node's first
    started = {
        s.group: i
        for i, s in reversed(list(enumerate(steps)))
        if s.name == "join" and s.state is StepState.RUNNING
    }
    done = {s.group: i for i, s in enumerate(steps) if s.name == "join" and s.state is StepState.DONE}
    assert set(started) == set(done) == {"node-1", "node-2"}
    assert max(started.values()) < min(done.values()), (
        "the second join started only after the first one ended"
    )


async def test_join_token_and_ca_hash_never_shown(vms: Vms) -> None:
    vms.sandbox.fail_once("node-2", "kubeadm join")  # a failure's tail is shown too: it must be masked
    steps: list[Step] = []
    with pytest.raises(BootstrapFailed) as info:
        await run(vms, steps)
    secrets = [*vms.tokens(), vms.ca_hash()]
    assert len(secrets) >= 3  # kubeadm init's token, the join command's, the CA hash
    shown = [f"{s.group} {s.name} {s.log}" for s in steps] + [str(info.value), repr(info.value.result)]
    for secret in secrets:
        assert not any(secret in text for text in shown), secret
        assert not any(secret.split(".")[0] in text for text in shown if "." in secret), "token id shown"
    join_step = next(s for s in steps if s.key == ("cluster", "join command") and s.state is StepState.DONE)
    assert join_step.log.startswith("kubeadm join 10.168.0.2:6443 --token ******.********")
    assert "sha256:********" in join_step.log
    init = [s for s in steps if s.key == ("node-0", "kubeadm-init")]
    assert any("sha256:********" in s.log for s in init)  # kubeadm init prints the join line itself
    failure = info.value.failures[0]
    assert failure.node == "node-2" and failure.phase == "join"
    assert "kubelet is not healthy" in failure.tail


async def test_a_failing_phase_shows_its_last_lines_and_a_rerun_resumes(vms: Vms) -> None:
    vms.sandbox.fail_once("node-0", "kubeadm init")
    steps: list[Step] = []
    with pytest.raises(BootstrapError) as info:
        await run(vms, steps)
    err = info.value
    assert (err.node, err.phase) == ("node-0", "kubeadm-init")
    assert "wait-control-plane: could not initialize a Kubernetes cluster" in err.tail
    assert "node-ctl.sh exited 1" in str(err)
    failed = [s for s in steps if s.state is StepState.FAILED]
    assert [s.key for s in failed] == [("node-0", "kubeadm-init")]
    assert "could not initialize" in failed[0].log
    assert not any(s.group in ("node-1", "node-2") for s in steps), "workers must wait for the control plane"
    installs = sum(
        c.line.endswith("install cri-o kubelet kubeadm kubectl") for c in vms.sandbox.calls("node-0")
    )
    assert installs == 1

    steps.clear()
    await run(vms, steps)
    states = last_states(steps)
    for phase in ("hostname", "kernel", "repos", "packages", "crio", "kubelet"):
        assert states[("node-0", phase)] is StepState.SKIPPED, phase
    assert states[("node-0", "kubeadm-init")] is StepState.DONE
    installs = sum(
        c.line.endswith("install cri-o kubelet kubeadm kubectl") for c in vms.sandbox.calls("node-0")
    )
    assert installs == 1, "packages were installed again after the resume"
    assert sum(c.line.startswith("kubeadm init") for c in vms.sandbox.calls("node-0")) == 2


async def test_an_unreachable_worker_fails_alone(vms: Vms) -> None:
    await vms["node-2"].close()
    steps: list[Step] = []
    with pytest.raises(BootstrapFailed) as info:
        await run(vms, steps)
    result = info.value.result
    assert result.joined == ["node-1"] and result.labels == {"node-1": "node-wrk-1"}
    assert list(result.failed) == ["node-2"] and "cannot connect" in result.failed["node-2"]
    assert result.admin_conf is not None and result.admin_conf.exists()
    assert last_states(steps)[("node-2", "upload")] is StepState.FAILED
    wait = vms["node-0"].runs_of("kubectl")[0].argv
    assert "node/node-1" in wait and "node/node-2" not in wait


async def test_a_worker_failing_mid_script_leaves_the_other_joined(vms: Vms) -> None:
    vms.sandbox.fail_once("node-1", "apt-get -y -q -o DPkg::Lock::Timeout=600 install cri-o")
    steps: list[Step] = []
    with pytest.raises(BootstrapFailed) as info:
        await run(vms, steps)
    (failure,) = info.value.failures
    assert (failure.node, failure.phase) == ("node-1", "packages")
    assert "503  Service Unavailable" in failure.tail
    assert info.value.result.joined == ["node-2"]
    assert last_states(steps)[("node-1", "packages")] is StepState.FAILED
    assert not (vms["node-1"].root / "etc/labyrinth/join.yaml").exists()  # removed even on failure

    steps.clear()
    await run(vms, steps)  # the re-run picks node-1 up where it stopped; node-2 has nothing left to do
    states = last_states(steps)
    assert states[("node-1", "repos")] is StepState.SKIPPED and states[("node-1", "join")] is StepState.DONE
    assert states[("node-2", "join")] is StepState.SKIPPED
