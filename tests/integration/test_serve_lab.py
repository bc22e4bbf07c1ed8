"""`labyrinth serve` on a real lab: the presenter opens a live stream and runs the journey, two viewers
(the real OpenSSH client in tmux) see the stream's packets and the journey as they happen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import needs_root
from tests.fakes.serve_harness import Server, make_keys, serve, tmux_server
from tests.fakes.waiting import wait_until
from tests.integration.conftest import article_exchange, labyrinth, unique_prefix

pytestmark = [pytest.mark.slow, needs_root]


@pytest.fixture
def lab() -> Iterator[str]:
    """A lab of its own (LABYRINTH_TEST_PREFIX gives it the runner's prefix), always taken down."""
    prefix = unique_prefix("v")
    try:
        labyrinth("lab", "up", "--prefix", prefix)
        yield prefix
    finally:
        labyrinth("lab", "down", "--prefix", prefix, check=False)


def test_viewers_follow_the_presenters_live_stream_and_journey_on_a_lab(tmp_path: Path, lab: str) -> None:
    keys = make_keys(tmp_path / "keys")
    folder = tmp_path / "keys"
    options = ("--presenter-keys", str(folder / "presenters"), "--audience-keys", str(folder / "audience"))
    with serve(tmp_path, *options, "--prefix", lab) as server, tmux_server("sv-lab") as tmux:
        assert isinstance(server, Server)
        tmux.open("presenter", server.ssh(keys["presenter"], "-tt"))
        tmux.open("alice", server.ssh(keys["alice"], "-tt"), width=100, height=30)
        tmux.open("bob", server.ssh(keys["bob"], "-tt"))
        # tree labels are shortened in the middle at these widths: wait on what stays whole
        tmux.wait("presenter", "presenting", "wrk-1/node-wrk", f"lab {lab}", timeout=30)
        for viewer in ("alice", "bob"):
            tmux.wait(viewer, "following the presenter", "wrk-1/node-wrk", timeout=30)

        tmux.keys("presenter", "C-p")
        tmux.wait("presenter", "Search for commands")
        tmux.type("presenter", "Open stream node-1 · lxc")
        tmux.wait("presenter", "Open stream node-1 · lxc")
        tmux.keys("presenter", "Enter")
        tmux.wait("presenter", "● node-1", timeout=20)
        for viewer in ("alice", "bob"):
            tmux.wait(viewer, "● node-1")

        article_exchange(lab)
        tmux.wait("presenter", "[SYN]", "10.105.134.33")
        for viewer in ("alice", "bob"):  # the packets captured once, on the presenter's side
            tmux.wait(viewer, "[SYN]", "10.105.134.33")

        # j on a node's line (not a pod: a pod asks for a target) runs the article's journey
        tmux.keys("presenter", "t")
        wait_until(lambda: "Packet detail" not in tmux.screen("presenter"), timeout=10, what="the tree")
        tmux.keys("presenter", "Down")
        tmux.wait("bob", "on ▣ node-0")
        tmux.keys("presenter", "j")
        for viewer in ("presenter", "alice", "bob"):
            tmux.wait(viewer, "search walk", "SYN", timeout=30)
        text = server.text()
        assert "+ viewer alice@room" in text and "+ viewer bob@room" in text
