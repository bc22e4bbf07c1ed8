"""What a lab owns: one lock per prefix never unlinked, a mark per netns, removal only inside its roots."""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import secrets
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

from labyrinth_tui.lab.spec import check_prefix
from labyrinth_tui.lab.state import RUN_DIR, TMP_DIR, LabError

# Both names start with a dot, which no prefix can: no lab's state dir can be, or hold, either of them.
LOCK_DIR = RUN_DIR / ".locks"
OWNED_DIR = RUN_DIR / ".owned"


def lock_path(prefix: str) -> Path:
    return LOCK_DIR / f"{check_prefix(prefix)}.lock"


@contextlib.contextmanager
def locked(prefix: str) -> Iterator[None]:
    """One up/down of a prefix at a time, across processes.

    The lock file is never removed: unlinking it while held let a waiter (on the old inode) and a
    newcomer (on a new file) both go ahead, and two builds of one lab ran at once.
    """
    path = lock_path(prefix)
    LOCK_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def mark(prefix: str, netns: Iterable[str]) -> None:
    """Say these netns are the lab's, before they exist: a crash after `netns add` still leaves them marked.

    Marks live outside the state dir (`.owned/<netns>` holding the prefix), so a lost state dir
    does not orphan the namespaces, and outside /etc/netns (whose files `ip netns exec` bind-mounts).
    """
    OWNED_DIR.mkdir(parents=True, exist_ok=True)
    for name in netns:
        _mark_path(prefix, name).write_text(prefix + "\n")


def owner_of(netns: str) -> str | None:
    try:
        return (OWNED_DIR / netns).read_text().strip() or None
    except (OSError, UnicodeDecodeError, ValueError):
        return None


def marked(prefix: str) -> list[str]:
    """Every netns name this lab marked as its own (whether or not the netns still exists)."""
    owned = check_prefix(prefix) + "."
    try:
        names = os.listdir(OWNED_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith(owned) and owner_of(n) == prefix)


def unmark(prefix: str, netns: Iterable[str]) -> None:
    for name in netns:
        with contextlib.suppress(FileNotFoundError):
            _mark_path(prefix, name).unlink()


def _mark_path(prefix: str, netns: str) -> Path:
    if not netns.startswith(check_prefix(prefix) + ".") or "/" in netns or netns in (".", ".."):
        raise LabError(f"netns {netns[:80]!r} is not named like lab {prefix!r}")
    return OWNED_DIR / netns


def remove_inside(path: Path | str, root: Path) -> bool:
    """Remove `path` (a tree or a file) only when, resolved, it lies strictly inside `root`; True if removed.

    Every path `lab down` removes goes through here, so no prefix, symlink or `..` can make it
    delete anything outside the lab's own roots.
    """
    target = Path(path)
    try:
        resolved_root = root.resolve()
        # the parent resolved, the last component kept: a symlink inside the root is removed, not followed
        resolved = target.parent.resolve() / target.name
    except (OSError, RuntimeError):
        return False
    if (
        resolved == resolved_root
        or not resolved.is_relative_to(resolved_root)
        or target.name in ("", ".", "..")
    ):
        return False
    if resolved.is_symlink() or resolved.is_file():
        with contextlib.suppress(FileNotFoundError):
            resolved.unlink()
        return True
    if resolved.is_dir():
        shutil.rmtree(resolved, ignore_errors=True)
        return True
    return False


# --- temporary folders: every one a lab's run makes on this machine lives under a root naming the
# prefix and the process, so `lab down` sweeps the orphans of ITS prefix only, never another lab's.
_RUN_ROOTS: dict[str, Path] = {}


def run_root(prefix: str, tmp: Path = TMP_DIR) -> Path:
    """This process's scratch root for lab `prefix`: /tmp/labyrinth-run-<prefix>-<pid>-<hex>, mode 700."""
    check_prefix(prefix)
    root = _RUN_ROOTS.get(prefix)
    if root is None or not root.is_dir():
        root = tmp / f"labyrinth-run-{prefix}-{os.getpid()}-{secrets.token_hex(3)}"
        root.mkdir(mode=0o700)
        _RUN_ROOTS[prefix] = root
        atexit.register(remove_inside, root, tmp)
    return root


def orphan_run_roots(prefix: str, tmp: Path = TMP_DIR) -> set[str]:
    """Run roots of lab `prefix` whose process is gone (killed -9, so its atexit never ran)."""
    pattern = re.compile(rf"labyrinth-run-{re.escape(check_prefix(prefix))}-(\d+)-[0-9a-f]{{6}}")
    orphans = set()
    for path in tmp.glob(f"labyrinth-run-{prefix}-*"):
        found = pattern.fullmatch(path.name)
        if found is not None and not _labyrinth_alive(int(found.group(1))):
            orphans.add(str(path))
    return orphans


def _labyrinth_alive(pid: int) -> bool:
    try:
        return b"labyrinth" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def capture_workdir_pattern(prefix: str) -> re.Pattern[str]:
    """A lab node's capture folder (nodes share this machine's /tmp): /tmp/labyrinth-cap-<prefix>-<12 hex>."""
    return re.compile(
        rf"{re.escape(str(TMP_DIR))}/labyrinth-cap-{re.escape(check_prefix(prefix))}-[0-9a-f]{{12}}"
    )
