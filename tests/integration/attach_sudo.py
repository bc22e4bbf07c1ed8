"""The lab attached as a cluster, logged into as a non-root user with `sudo -n`, ONLY in a private mount ns.

Started by test_attach_sudo.py as `unshare -m --propagation private python -m tests.integration.attach_sudo
PREFIX DIR`; it refuses to run otherwise. Two throwaway users exist only here: copies of /etc/passwd,
/etc/group and /etc/shadow with their lines added, and a sudoers.d holding one drop-in, are bind-mounted
over the real ones (the mounts die with this namespace; DIR, the test's temporary folder, holds the copies
and the users' homes). The lab is brought up from inside, so its sshd (and the `sudo` it runs) sees them:

- `lbsudo`: `NOPASSWD: ALL`, and sudo logs every command it runs for it to DIR/sudo.log;
- `lbnosudo`: no sudo rights at all (`sudo -n true` as it prints "sudo: a password is required").

`!fqdn`: the lab's nodes are named node-N in their own UTS namespace but no /etc/hosts names them, and
sudo would warn "unable to resolve host node-1" on every command (a VM resolves its own name).
Prints one JSON object: the reports, what the CLI said, and sudo's log.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from labyrinth_tui.cloud.bootstrap.inventory import parse_inventory
from labyrinth_tui.journey.request import JourneyRequest
from labyrinth_tui.sources.cluster import ClusterSource
from tests.fakes.kube_api import KubeApiStub
from tests.fakes.kube_lab import LabCluster
from tests.integration.conftest import LABYRINTH, journey_cli

SUDO_USER, NO_SUDO_USER = "lbsudo", "lbnosudo"
ETC_FILES = ("passwd", "group", "shadow")


def private_namespace() -> bool:
    """This process's mount namespace is not the one of its starter (which passes its own)."""
    starter = os.environ.get("ATTACH_STARTER_MNT", "")
    return bool(starter) and os.readlink("/proc/self/ns/mnt") != starter


def sh(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=120)


def free_ids(count: int) -> list[int]:
    """`count` ids that no user and no group of this machine has."""
    taken = {
        int(line.split(":")[2])
        for name in ("passwd", "group")
        for line in Path("/etc", name).read_text().splitlines()
        if line.count(":") >= 3
    }
    return [i for i in range(61000, 65000) if i not in taken][:count]


def make_users(work: Path) -> None:
    """The users, their homes and the sudoers drop-in in `work`, bind-mounted over /etc's (here only)."""
    etc = work / "etc"
    etc.mkdir()
    for name in ETC_FILES:
        (etc / name).write_text(Path("/etc", name).read_text())
    for user, uid in zip((SUDO_USER, NO_SUDO_USER), free_ids(2), strict=True):
        home = work / "home" / user
        home.mkdir(parents=True)
        os.chown(home, uid, uid)
        with (etc / "passwd").open("a") as f:
            f.write(f"{user}:x:{uid}:{uid}::{home}:/bin/sh\n")
        with (etc / "group").open("a") as f:
            f.write(f"{user}:x:{uid}:\n")
        with (etc / "shadow").open("a") as f:
            f.write(f"{user}:*:19000:0:99999:7:::\n")  # `*`: no password, yet not a locked account
    drop_in = etc / "sudoers.d"
    drop_in.mkdir()
    (drop_in / "labyrinth-test").write_text(
        "Defaults !fqdn\n"
        f"Defaults:{SUDO_USER} logfile={work / 'sudo.log'}, loglinelen=0\n"
        f"{SUDO_USER} ALL=(root) NOPASSWD: ALL\n"
    )
    (drop_in / "labyrinth-test").chmod(0o440)
    for name in (*ETC_FILES, "sudoers.d"):
        sh("mount", "--bind", str(etc / name), f"/etc/{name}")


def labyrinth(*args: str) -> str:
    return sh(*LABYRINTH, *args).stdout


async def attached_journeys(work: Path, status: dict[str, Any], inventory: str) -> dict[str, Any]:
    """The article's pair and an extra pod to the other service, through ClusterSource as `lbsudo`."""
    async with KubeApiStub(work / "pki", model=LabCluster(status)) as api:
        (work / "admin.conf").write_text(yaml.safe_dump(api.admin_conf()))
        source = ClusterSource(work / "admin.conf", inventory=parse_inventory(inventory, "lab inventory"))
        try:
            await source.start(lambda event: None)
            topology = source.topology
            assert topology is not None
            article = (await source.journey(lambda event: None)).jsonable()
            extra = next(p for p in status["pods"] if p["name"] == "extra-node-2-000")
            request = JourneyRequest.parse(
                f"scale/{extra['name']}", "node-wrk-1-ubuntu24.wrk-1:9999", "tcp", "hello sudo"
            )
            other = (await source.journey(lambda event: None, request)).jsonable()
        finally:
            await source.close()
    return {
        "nodes": [
            {
                "name": n.name,
                "reachable": n.reachable,
                "error": n.error,
                "interfaces": [i.name for i in n.interfaces],
            }
            for n in topology.nodes
        ],
        "article": article,
        "other": other,
    }


def main() -> int:
    if not private_namespace() or len(sys.argv) != 3:
        print("refusing: not in a private mount namespace (or no PREFIX DIR)", file=sys.stderr)
        return 3
    prefix, work = sys.argv[1], Path(sys.argv[2])
    make_users(work)
    result: dict[str, Any] = {}
    try:
        labyrinth("lab", "up", "--prefix", prefix, "--pods-per-node", "1")
        status = json.loads(labyrinth("lab", "status", "--json", "--prefix", prefix))
        inventory = labyrinth("lab", "inventory", "--prefix", prefix, "--user", SUDO_USER)
        refused = labyrinth("lab", "inventory", "--prefix", prefix, "--user", NO_SUDO_USER)
        result["status"] = status
        result["inventory"] = yaml.safe_load(inventory)
        result["sudo"] = asyncio.run(attached_journeys(work, status, inventory))
        rc, out, err = asyncio.run(journey_cli(work, status, refused))
        result["no_sudo"] = {"rc": rc, "stdout": out, "stderr": err}
        log = work / "sudo.log"
        result["sudo_log"] = log.read_text().splitlines() if log.exists() else []
    finally:
        subprocess.run([*LABYRINTH, "lab", "down", "--prefix", prefix], capture_output=True, timeout=120)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
