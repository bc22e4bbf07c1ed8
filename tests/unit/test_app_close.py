"""However the app ends, its source is closed once: an attached cluster's key folder does not outlive it."""

from __future__ import annotations

import tempfile
from pathlib import Path

from labyrinth_tui.sources.cluster import ClusterSource
from labyrinth_tui.ui.app import make_app
from tests.fakes.kube_api import KubeApiStub
from tests.unit.test_cluster_source import journey, kubeconfig


def key_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("labyrinth-kube-*"))


async def test_an_app_ended_without_q_removes_the_clusters_key_folder(
    api: KubeApiStub, tmp_path: Path
) -> None:
    await journey(api, tmp_path)
    before = key_folders()
    source = ClusterSource(kubeconfig(api, tmp_path), discover=False)
    app = make_app(source)
    async with app.run_test(size=(100, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert source.topology is not None  # attached: the client wrote the kubeconfig's keys
        assert key_folders() - before, "the attached client keeps its keys in a folder of its own"
        app.exit()  # not `q`: a screen ending the app, or a viewer's terminal gone
    assert key_folders() - before == set()


async def test_q_then_the_apps_end_close_the_source_once(api: KubeApiStub, tmp_path: Path) -> None:
    await journey(api, tmp_path)
    source = ClusterSource(kubeconfig(api, tmp_path), discover=False)
    closes = 0
    close = source.close

    async def counted() -> None:
        nonlocal closes
        closes += 1
        await close()

    source.close = counted  # type: ignore[method-assign]
    app = make_app(source)
    async with app.run_test(size=(100, 40)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.press("q")
    assert closes == 1
