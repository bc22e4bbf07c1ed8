"""Untrusted YAML and state: inventories, kubeconfigs and state.json fail with one typed line, never more."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labyrinth_tui.cloud.bootstrap.inventory import InventoryError, load_inventory, parse_inventory
from labyrinth_tui.cloud.kube.client import KubeClient
from labyrinth_tui.cloud.kube.errors import KubeConfigError
from labyrinth_tui.cloud.kube.kubeconfig import load_kubeconfig
from labyrinth_tui.lab import state as lab_state
from labyrinth_tui.lab.state import LabError, load_state
from tests.fakes.fuzz import FUZZ_EXAMPLES

fuzz = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and len(text) < 400, text
    return text


def test_a_billion_laughs_under_one_kb_is_refused_at_its_first_anchor(tmp_path: Path) -> None:
    assert len(LAUGHS) < 1024
    path = tmp_path / "inv.yaml"
    path.write_text(LAUGHS)
    with pytest.raises(InventoryError, match=r"inv.yaml: line 1: anchors \(&a\) are not accepted"):
        load_inventory(path)
    (tmp_path / "k").write_text(LAUGHS)
    with pytest.raises(KubeConfigError, match="anchors"):
        load_kubeconfig(tmp_path / "k")


@pytest.mark.parametrize(
    "text, said",
    [
        ("nodes: " + "[" * 100_000, "nested deeper than 32"),
        ("nodes:\n" + "- " * 5000 + "x\n", "nested deeper than 32"),
        ("nodes:\n  - {name: a, user: [root, admin]}\n", "node a: user must be text, got a list of 2"),
        ("nodes:\n  - {name: a, role: " + "x" * 100_000 + "}\n", "node a: role 'xxx"),
        ("nodes:\n  - {name: a, port: [22]}\n", "node a: port a list of 1 is not a TCP port"),
        ("nodes:\n  - {name: a, " + ", ".join(f"k{i}: 1" for i in range(5000)) + "}\n", "unknown field"),
        ("nodes: !!python/object:os.system x\n", "could not determine a constructor"),
        ("nodes: [a]\n\x00", "unacceptable character"),
    ],
    ids=[
        "flow-depth",
        "block-depth",
        "list-for-text",
        "long-value",
        "list-for-port",
        "many-keys",
        "tag",
        "nul",
    ],
)
def test_crafted_inventories_are_one_line_naming_the_file(text: str, said: str) -> None:
    with pytest.raises(InventoryError) as caught:
        parse_inventory(text, "crafted.yaml")
    line = one_line(caught.value)
    assert line.startswith("crafted.yaml: ") and said in line


def test_an_inventory_at_dev_zero_stops_at_the_size_limit() -> None:
    with pytest.raises(InventoryError, match="larger than 1024 KB"):
        load_inventory(Path("/dev/zero"))


KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "current-context": "c",
    "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
    "clusters": [{"name": "k", "cluster": {"server": "https://127.0.0.1:6443"}}],
    "users": [{"name": "u", "user": {"token": "t"}}],
}


@pytest.mark.parametrize(
    "edit, said",
    [
        (
            lambda c: c["clusters"][0]["cluster"].update(server=["a", "b"]),
            "clusters[0].cluster.server must be text",
        ),
        (lambda c: c["users"][0]["user"].update(token={"x": 1}), "users[0].user.token must be text"),
        (lambda c: c.update({"current-context": ["c"]}), "current-context must be text, not a list"),
        (lambda c: c["contexts"].append("x" * 10_000), "contexts[1] must be a mapping, not a string 'xxx"),
        (lambda c: c["users"][0]["user"].update(exec={"command": "x", "args": [1]}), "exec.args[0] must be"),
    ],
)
def test_crafted_kubeconfigs_are_one_line_naming_the_file_and_key(
    tmp_path: Path, edit: Any, said: str
) -> None:
    config = json.loads(json.dumps(KUBECONFIG))
    edit(config)
    path = tmp_path / "admin.conf"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(KubeConfigError) as caught:
        load_kubeconfig(path)
    line = one_line(caught.value)
    assert line.startswith(f"kubeconfig {path}: ") and said in line


def test_a_good_kubeconfig_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "admin.conf"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    client = KubeClient.from_config(load_kubeconfig(path), temp_dir=tmp_path)
    assert client.server == "https://127.0.0.1:6443"
    client.close()


node_entries = st.dictionaries(
    st.sampled_from(["name", "address", "internal_ip", "user", "key", "port", "role", "other"]),
    values | st.sampled_from(["node-0", "10.0.0.1", "root", "worker", "control-plane", 22]),
    max_size=7,
)
inventories = st.dictionaries(
    st.sampled_from(["cluster", "api_via", "known_hosts", "ssh_config", "nodes", "x"]),
    values | st.lists(node_entries | values, max_size=4),
    max_size=5,
)


@fuzz
@given(inventories, st.sampled_from(["", "&a ", "*a ", "!!binary ", "[", "\x1b"]), st.integers(0, 200))
def test_any_inventory_loads_or_fails_with_one_inventory_error(data: object, noise: str, at: int) -> None:
    text = yaml.safe_dump(data)
    text = text[:at] + noise + text[at:]
    try:
        parse_inventory(text, "fuzz.yaml")
    except InventoryError as exc:
        assert one_line(exc).startswith("fuzz.yaml")


def _entries(inner_key: str, inner: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    entry = st.fixed_dictionaries(
        {}, optional={"name": st.sampled_from(["c", "k", "u"]) | values, inner_key: inner}
    )
    return st.lists(entry | values, max_size=2) | values


cluster_bodies = st.dictionaries(
    st.sampled_from(["server", "certificate-authority-data", "tls-server-name", "insecure-skip-tls-verify"]),
    values | st.sampled_from(["https://127.0.0.1:6443", "http://x", "bm90IGEgY2VydA==", True]),
    max_size=3,
)
# no exec or auth-provider: the library would run the command it names
user_bodies = st.dictionaries(
    st.sampled_from(["token", "username", "password", "client-key-data"]), values | st.just("t"), max_size=3
)
kubeconfigs = st.fixed_dictionaries(
    {
        "contexts": _entries(
            "context", st.dictionaries(st.sampled_from(["cluster", "user"]), values, max_size=2)
        )
    },
    optional={
        "current-context": st.sampled_from(["c"]) | values,
        "clusters": _entries("cluster", cluster_bodies | values),
        "users": _entries("user", user_bodies | values),
    },
)


@fuzz
@given(kubeconfigs)
def test_any_kubeconfig_loads_or_fails_with_one_kubeconfig_error(
    tmp_path_factory: Any, config: object
) -> None:
    folder = tmp_path_factory.mktemp("kube")
    path = folder / "config"
    path.write_text(yaml.safe_dump(config))
    try:
        client = KubeClient.from_config(load_kubeconfig(path), temp_dir=folder)
    except KubeConfigError as exc:
        one_line(exc)
    else:
        client.close()


@fuzz
@given(
    values | st.fixed_dictionaries({}, optional={k: values for k in ("prefix", "nodes", "pods", "dns_pid")})
)
def test_any_state_json_loads_or_fails_with_one_lab_error(
    tmp_path_factory: Any, monkeypatch: pytest.MonkeyPatch, data: object
) -> None:
    run_dir = tmp_path_factory.mktemp("run")
    monkeypatch.setattr(lab_state, "RUN_DIR", run_dir)
    (run_dir / "tq1").mkdir()
    (run_dir / "tq1" / "state.json").write_text(json.dumps(data))
    try:
        load_state("tq1")
    except LabError as exc:
        assert "tq1" in one_line(exc)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "labyrinth_tui", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "content",
    [LAUGHS, "contexts: " + "[" * 50_000, "contexts:\n- name: [a]\n"],
    ids=["laughs", "deep", "list"],
)
def test_the_cli_says_one_line_for_a_crafted_kubeconfig_or_inventory(tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    good = tmp_path / "good.conf"
    good.write_text(yaml.safe_dump(KUBECONFIG))
    runs = [
        _cli("cluster", "attach", "--kubeconfig", str(bad), "--json"),
        _cli("cluster", "attach", "--kubeconfig", str(good), "--ssh-inventory", str(bad), "--json"),
        _cli("cluster", "bootstrap", "--inventory", str(bad)),
    ]
    for done in runs:
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr and not done.stdout
        said = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
        assert len(said) == 1 and str(bad) in said[0] and len(said[0]) < 300, done.stderr
