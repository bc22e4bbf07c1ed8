"""`labyrinth cluster bootstrap | attach` as a user runs them, against fake VMs and a stub API server."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from labyrinth_tui.cli import main
from labyrinth_tui.nodes.commands import port_probe
from tests.fakes import DATA
from tests.fakes.cluster_vms import BackgroundLoop, Vms, fake_vms
from tests.fakes.kube_api import KubeApiStub

NODE2 = (DATA / "discovery_node2.txt").read_text()


def labyrinth(*args: str, config: Path, stdin: str | None = None) -> Result:
    env = {"LABYRINTH_CONFIG_DIR": str(config), "KUBECONFIG": str(config / "no-such-kubeconfig")}
    return CliRunner().invoke(main, list(args), env=env, input=stdin)


def test_cluster_commands_are_listed(tmp_path: Path) -> None:
    assert "cluster" in labyrinth("--help", config=tmp_path).stdout
    help_text = labyrinth("cluster", "--help", config=tmp_path).stdout
    assert "attach" in help_text and "bootstrap" in help_text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give one of --inventory FILE or --from-gcp CLUSTER"),
        (("--from-gcp", "nope"), "no nodes saved for GCP cluster 'nope'"),
        (("--inventory", "missing.yaml"), "cannot read inventory missing.yaml"),
        (("--inventory", "x.yaml", "--kubernetes-version", "latest"), "give a minor version like 1.33"),
        (("--inventory", "x.yaml", "--cilium-version", "1.17"), "Cilium version '1.17'"),
    ],
)
def test_bootstrap_refuses_what_it_cannot_use(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    result = labyrinth("cluster", "bootstrap", *args, config=tmp_path)
    assert result.exit_code == 2 and message in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cluster: x\n", "needs a `nodes:` list"),
        ("nodes:\n  - name: node-0\n    adress: 1.2.3.4\n", "node node-0: unknown field(s) adress"),
        ("nodes:\n  - name: node-0\n    key: /no/such/key\n", "key file /no/such/key does not exist"),
        ("nodes:\n  - name: node-0\n    internal_ip: 10.168.0\n", "is not an IPv4 address"),
        ("nodes:\n  - {name: a}\n  - {name: a}\n", "node names repeat"),
        ("api_via: node-9\nnodes:\n  - {name: node-0}\n", "api_via 'node-9' is not one of the nodes"),
    ],
)
def test_a_bad_inventory_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    result = labyrinth("cluster", "bootstrap", "--inventory", str(path), "--yes", config=tmp_path)
    assert result.exit_code == 2 and message in result.stderr and str(path) in result.stderr


def test_attach_with_a_missing_kubeconfig_says_so(tmp_path: Path) -> None:
    result = labyrinth("cluster", "attach", "--json", config=tmp_path)
    assert result.exit_code == 2 and "no-such-kubeconfig does not exist" in result.stderr


def write_inventory(vms: Vms, path: Path) -> None:
    known = vms.tmp / "known_hosts"
    known.write_text("".join(v.known_hosts_line for v in vms.vms))
    nodes = [
        {
            "name": vm.name,
            "address": "127.0.0.1",
            "port": vm.port,
            "internal_ip": vm.internal_ip,
            "user": "labyrinth",
            "key": str(vm.client_key_path),
        }
        for vm in vms.vms
    ]
    path.write_text(
        yaml.safe_dump(
            {"cluster": "labyrinth", "known_hosts": str(known), "ssh_config": False, "nodes": nodes}
        )
    )


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[BackgroundLoop, Vms, KubeApiStub]]:
    with BackgroundLoop() as bg:
        api = bg.enter(KubeApiStub(tmp_path / "pki", loopback_san=False, labelled=False))
        vms = bg.enter(fake_vms(tmp_path))
        api.cluster.labels_dir = vms.sandbox.shared / "labels"  # node-0's kubectl label, seen by the API
        vms.sandbox.write_shared("admin.conf", api.pki.admin_conf_text("https://10.168.0.2:6443"))
        vms["node-0"].forwards[("10.168.0.2", 6443)] = ("127.0.0.1", api.port)
        vms["node-2"].discovery_output = NODE2
        yield bg, vms, api


def test_bootstrap_then_attach_end_to_end(
    world: tuple[BackgroundLoop, Vms, KubeApiStub], tmp_path: Path
) -> None:
    _, vms, _ = world
    config = tmp_path / "config"
    write_inventory(vms, tmp_path / "inventory.yaml")
    result = labyrinth(
        "cluster", "bootstrap", "--inventory", str(tmp_path / "inventory.yaml"), config=config, stdin="y\n"
    )
    assert result.exit_code == 0, result.stderr + result.stdout
    out = result.stdout
    cluster_dir = config / "clusters" / "labyrinth"
    assert "Bootstrap Kubernetes 1.33 (cri-o, kubeadm) and Cilium 1.17.4 on:" in out
    assert "labyrinth: node-0, node-1, node-2 are Ready and labelled." in out
    assert "nc server pod wrk-2/node-wrk-2-ubuntu24-" in out and "on node-2" in out
    attach_line = (
        f"labyrinth cluster attach --kubeconfig {cluster_dir}/admin.conf"
        f" --ssh-inventory {cluster_dir}/inventory.yaml"
    )
    assert attach_line in out
    assert "✓ node-0   kubeadm-init" in result.stderr and "✓ cluster  restart coredns" in result.stderr
    assert "✓ cluster  node check" in result.stderr  # before anything was installed
    first_script = min(e.at for e in vms["node-0"].execs if e.argv[0] == "install")
    probes = [e for vm in vms.vms for e in vm.execs if is_probe(e.argv)]
    assert len(probes) == 6 * 3 + 2 and all(e.at < first_script for e in probes)
    for secret in [*vms.tokens(), vms.ca_hash()]:
        assert secret not in result.stdout + result.stderr
    for name in ("admin.conf", "inventory.yaml"):
        assert stat.S_IMODE((cluster_dir / name).stat().st_mode) == 0o600
    assert yaml.safe_load((cluster_dir / "inventory.yaml").read_text())["api_via"] == "node-0"

    vms.sandbox.set_ports({("10.168.0.5", "10250/tcp"): "filtered"})  # node-2's kubelet behind a firewall
    attached = labyrinth(*attach_line.split()[1:], "--json", config=config)
    assert attached.exit_code == 0, attached.stderr  # a warning: the cluster is still shown
    assert "✗ cluster  node check" in attached.stderr
    assert "warning: some nodes cannot reach each other as the cluster needs" in attached.stderr
    for source in ("node-0", "node-1"):
        assert f"✗ {source} → node-2 10250/tcp (kubelet): filtered: no answer within 6 s" in attached.stderr
    assert "18/20 probes passed" in attached.stderr
    topo = json.loads(attached.stdout)
    assert [n["name"] for n in topo["nodes"]] == ["node-0", "node-1", "node-2"]
    node2 = topo["nodes"][2]
    pods = {p["ip"]: p for p in node2["pods"]}
    assert pods["10.0.2.215"]["namespace"] == "wrk-2" and pods["10.0.2.215"]["host_veth"].startswith("lxc")
    assert [p["ip"] for p in topo["nodes"][1]["pods"]] == ["10.0.1.15"]
    assert "✓ cluster  discover" in attached.stderr

    vms.sandbox.set_ports({})  # the firewall fixed
    again = labyrinth(
        "cluster", "bootstrap", "--inventory", str(tmp_path / "inventory.yaml"), "--yes", config=config
    )
    assert again.exit_code == 0, again.stderr
    assert "↷ node-0   kubeadm-init     already done" in again.stderr  # a re-run only checks


def test_a_filtered_api_server_port_stops_bootstrap_with_the_matrix(
    world: tuple[BackgroundLoop, Vms, KubeApiStub], tmp_path: Path
) -> None:
    _, vms, _ = world
    write_inventory(vms, tmp_path / "inventory.yaml")
    vms.sandbox.set_ports({("10.168.0.2", "6443/tcp"): "filtered", ("10.168.0.4", "8472/udp"): "filtered"})
    args = ("cluster", "bootstrap", "--inventory", str(tmp_path / "inventory.yaml"), "--yes")
    result = labyrinth(*args, config=tmp_path)
    assert result.exit_code == 1
    err = result.stderr
    assert "✗ cluster  node check" in err
    assert "6443/tcp (API server) — to the control plane only" in err
    assert "    node-1           ✗ filtered" in err  # its row of the 6443 matrix: node-0's column
    for source in ("node-1", "node-2"):
        assert f"✗ {source} → node-0 6443/tcp (API server): filtered: no answer within 6 s" in err
    assert "→ node-1 8472/udp" not in err  # UDP silence is open|filtered: not a failure
    assert "18/20 probes passed" in err
    assert "nothing was installed" in err and "--no-check" in err
    # nothing but probes ran: no upload, no script
    assert all(is_probe(e.argv) for vm in vms.vms for e in vm.execs)
    # each probe is the command line port_probe builds; the silent one asked again with a longer wait
    got = sorted(e.argv for e in vms["node-1"].execs)
    want = [
        *(tuple(port_probe(p, ip, n, 2.0)) for ip in ("10.168.0.2", "10.168.0.5") for p, n in PORTS),
        tuple(port_probe("tcp", "10.168.0.2", 6443, 2.0)),
        tuple(port_probe("tcp", "10.168.0.2", 6443, 6.0)),
    ]
    assert got == sorted(want)
    # and the fake bash answered them on the node (no socket opened): host and port as given
    said = [c.args for c in vms.sandbox.calls("node-1") if c.name == "bash"]
    assert sum(a.endswith("10.168.0.2 6443") for a in said) == 2


PORTS = (("tcp", 22), ("udp", 8472), ("tcp", 10250))


def is_probe(argv: tuple[str, ...]) -> bool:
    return argv[:4] == tuple(port_probe("tcp", "h", 1, 1.0)[:4])


def test_declining_changes_nothing(world: tuple[BackgroundLoop, Vms, KubeApiStub], tmp_path: Path) -> None:
    _, vms, _ = world
    write_inventory(vms, tmp_path / "inventory.yaml")
    result = labyrinth(
        "cluster", "bootstrap", "--inventory", str(tmp_path / "inventory.yaml"), config=tmp_path, stdin="n\n"
    )
    assert result.exit_code == 1 and "Aborted" in result.stderr
    assert all(not vm.execs for vm in vms.vms)


def test_a_worker_failing_is_reported_and_the_rerun_finishes(
    world: tuple[BackgroundLoop, Vms, KubeApiStub], tmp_path: Path
) -> None:
    _, vms, _ = world
    write_inventory(vms, tmp_path / "inventory.yaml")
    vms.sandbox.fail_once("node-1", "apt-get -y -q -o DPkg::Lock::Timeout=600 install cri-o")
    args = ("cluster", "bootstrap", "--inventory", str(tmp_path / "inventory.yaml"), "--yes")
    result = labyrinth(*args, config=tmp_path)
    assert result.exit_code == 1
    assert "✗ node-1   packages" in result.stderr and "503  Service Unavailable" in result.stderr
    assert (
        "Error: node-1: packages failed: node-wrk.sh exited 100\nRe-run the same command to resume."
        in result.stderr
    )
    assert "What did join can be attached: labyrinth cluster attach" in result.stderr
    again = labyrinth(*args, config=tmp_path)
    assert again.exit_code == 0 and "node-0, node-1, node-2 are Ready and labelled." in again.stdout
