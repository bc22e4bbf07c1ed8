"""Fixtures the unit tests share: the fake GCE REST server, the Kubernetes API stub, three fake SSH VMs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes.cluster_vms import Vms, fake_vms
from tests.fakes.gce_server import FakeGce
from tests.fakes.kube_api import KubeApiStub


@pytest.fixture
def gce() -> Iterator[FakeGce]:
    """Google Compute Engine's REST API on 127.0.0.1, which the real google-cloud-compute client talks to."""
    with FakeGce() as server:
        yield server


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[KubeApiStub]:
    """A Kubernetes API server stub over HTTPS on 127.0.0.1 (its own PKI under tmp_path)."""
    async with KubeApiStub(tmp_path / "pki") as stub:
        yield stub


@pytest.fixture
async def vms(tmp_path: Path) -> AsyncIterator[Vms]:
    """Three Ubuntu VMs over real SSH, running the real node scripts with fake system commands."""
    async with fake_vms(tmp_path) as cluster:
        yield cluster
