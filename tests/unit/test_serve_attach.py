"""`labyrinth serve --kubeconfig …`: the presenter shows a cluster as `cluster attach` does (stub API)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import yaml
from click.testing import CliRunner, Result

from labyrinth_tui.cli import main
from labyrinth_tui.cli.serve import attach_argv
from labyrinth_tui.serve.child import parse, presenter_source
from labyrinth_tui.sources.base import SourceEvent, TopologyEvent
from labyrinth_tui.sources.cluster import ClusterSource
from labyrinth_tui.sources.follow_publish import PublishingSource
from labyrinth_tui.sources.follow_wire import read_frame
from tests.fakes.kube_api import KubeApiStub


def labyrinth(*args: str, config: Path) -> Result:
    return CliRunner().invoke(main, ["serve", *args], env={"LABYRINTH_CONFIG_DIR": str(config)})


async def test_the_presenter_shows_the_cluster_and_the_room_gets_its_topology(
    api: KubeApiStub, tmp_path: Path
) -> None:
    kubeconfig = tmp_path / "admin.conf"
    kubeconfig.write_text(yaml.safe_dump(api.admin_conf()))
    argv = attach_argv(kubeconfig, None, None, no_discover=True)
    source = presenter_source(parse(["--role", "presenter", "--hub-fd", "0", *argv]))
    assert isinstance(source, ClusterSource)
    presenter_end, hub_end = socket.socketpair()
    publishing = PublishingSource(source, presenter_end)
    shown: list[SourceEvent] = []
    reader, _ = await asyncio.open_unix_connection(sock=hub_end)
    try:
        await publishing.start(shown.append)
        frame = await asyncio.wait_for(read_frame(reader), 10)
        while not isinstance(frame, TopologyEvent):
            frame = await asyncio.wait_for(read_frame(reader), 10)
    finally:
        await publishing.close()
    names = ["node-0", "node-1", "node-2"]
    assert [n.name for n in frame.topology.nodes] == names  # what the hub fans out to the viewers
    assert [n.name for e in shown if isinstance(e, TopologyEvent) for n in e.topology.nodes] == names


def test_attach_options_are_checked_before_anyone_connects(tmp_path: Path) -> None:
    missing = labyrinth("--kubeconfig", str(tmp_path / "nope.conf"), config=tmp_path)
    assert missing.exit_code == 2 and "nope.conf" in missing.stderr
    assert "Traceback" not in missing.output
    both = labyrinth("--kubeconfig", str(tmp_path / "a"), "--replay", str(tmp_path), config=tmp_path)
    assert both.exit_code == 2 and "--replay or --kubeconfig, not both" in both.stderr
    alone = labyrinth("--context", "prod", config=tmp_path)
    assert alone.exit_code == 2 and "go with --kubeconfig" in alone.stderr
    bad = tmp_path / "inventory.yaml"
    bad.write_text("nodes: 3\n")
    kubeconfig = tmp_path / "admin.conf"
    kubeconfig.write_text("apiVersion: v1\n")
    inventory = labyrinth("--kubeconfig", str(kubeconfig), "--ssh-inventory", str(bad), config=tmp_path)
    assert inventory.exit_code == 2 and "inventory.yaml" in inventory.stderr
