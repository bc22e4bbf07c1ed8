"""Run `lab down` with hostile prefixes, ONLY inside a private mount namespace; print what moved as JSON.

Started by test_hostile_prefix.py under `unshare -m --propagation private`; it refuses to run otherwise.
It refuses to run otherwise. /run, /etc and /tmp are replaced by private tmpfs copies first, so even a
regression that deletes `/etc` or every netns can only touch this namespace's throwaway copies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HOSTILE = [
    "",
    "*",
    "labyrinth*",
    "../../tmp/victim",
    "../../etc",
    "rp1/../labyrinth",
    "rp1/../../../etc",
    "a" * 300,
    "tr\n",
    "tr.foo",
    ".locks",
    "-",
]
LAB = "tr"  # a valid prefix: its netns `tr.foo` was made by hand, not by the lab
ETC_KEEP = [
    "ld.so.cache",
    "passwd",
    "group",
    "nsswitch.conf",
    "iproute2",
    "alternatives",
    "resolv.conf",
    "hosts",
]


def private_namespace() -> bool:
    """This process's mount namespace is not the one of its starter (which passes its own)."""
    starter = os.environ.get("HOSTILE_STARTER_MNT", "")
    return bool(starter) and os.readlink("/proc/self/ns/mnt") != starter


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def private_roots() -> None:
    """tmpfs over /tmp and /run; /etc replaced by a copy (in that tmpfs) of what the tools read."""
    sh("mount", "-t", "tmpfs", "tmpfs", "/tmp")
    copy = Path("/tmp/.etc")
    copy.mkdir()
    for name in ETC_KEEP:
        src = Path("/etc") / name
        if src.is_dir():
            shutil.copytree(src, copy / name, symlinks=True)
        elif src.exists():
            shutil.copy2(src, copy / name)
    sh("mount", "--bind", str(copy), "/etc")
    sh("mount", "-t", "tmpfs", "tmpfs", "/run")


def victims() -> subprocess.Popen[bytes]:
    """Other labs' state, foreign /etc/netns entries and /tmp folders, a hand-made netns with a process."""
    for path in [
        "/run/labyrinth/rp1/state.json",
        "/run/labyrinth/labyrinth/state.json",
        "/tmp/victim/keep",
        "/tmp/victim.1/keep",
        "/etc/netns/other.node-1/resolv.conf",
        "/etc/netns/tr.foo/resolv.conf",
        "/etc/victim-file",
        "/tmp/labyrinth-cap-0123456789ab/run-0000.pcap",
        "/tmp/labyrinth-cap-other-0123456789ab/run-0000.pcap",
        "/tmp/labyrinth-run-other-999999-abcdef/capture-x/stream.pcapng",
    ]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text("keep\n")
    old = 1_000_000_000.0
    for folder in ["/tmp/labyrinth-cap-0123456789ab", "/tmp/labyrinth-cap-other-0123456789ab"]:
        os.utime(folder, (old, old))  # old enough to look orphaned: another lab's, so still not ours
    for name in ["other.node-1", "labyrinth.vpc", f"{LAB}.foo"]:
        sh("ip", "netns", "add", name)
    return subprocess.Popen(["ip", "netns", "exec", f"{LAB}.foo", "sleep", "600"])


def snapshot() -> dict[str, list[str]]:
    files = []
    for root in ("/run", "/etc", "/tmp"):
        for dirpath, dirnames, filenames in os.walk(root):
            paths = [os.path.join(dirpath, n) for n in dirnames + filenames]
            # lock files: made by the one valid `down`, inside the lab's own roots
            files += [p for p in paths if not p.startswith("/run/labyrinth/.locks")]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {"files": sorted(files), "netns": sorted(line.split()[0] for line in netns.splitlines() if line)}


def main() -> int:
    if not private_namespace():
        print("refusing: not in a private mount namespace", file=sys.stderr)
        return 3
    private_roots()
    sleeper = victims()
    before = snapshot()
    runs = []
    for prefix in [*HOSTILE, LAB]:
        done = subprocess.run(
            [sys.executable, "-m", "labyrinth_tui", "lab", "down", "--prefix", prefix],
            capture_output=True,
            text=True,
            timeout=60,
        )
        runs.append({"prefix": prefix, "rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr})
    after = snapshot()
    alive = sleeper.poll() is None
    sleeper.kill()
    sleeper.wait()
    print(json.dumps({"before": before, "after": after, "runs": runs, "foreign_process_alive": alive}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
