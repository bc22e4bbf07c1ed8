"""The process behind one SSH session: the app on its pty, as the presenter (real source) or a viewer."""

from __future__ import annotations

import argparse
import fcntl
import os
import pwd
import signal
import socket
import stat
import sys
import termios
from pathlib import Path

from labyrinth_tui.serve.cpu_share import join
from labyrinth_tui.sources.base import Source

VIEWER_NICE = 19
# a viewer redraws at most this often: a room reads the screen, and each redraw of 20 viewers is CPU
# taken on the presenter's two cores and bytes the server encrypts
VIEWER_FPS = 10


def yield_to_the_presenter() -> None:
    """A viewer runs only on CPU time nobody else wants (SCHED_IDLE): 20 viewers at nice 10 still took
    2/3 of the cores from the presenter here (bench/serve_viewers.py: median 50 ms → 4.2 s)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(VIEWER_NICE)


def become_terminal_owner() -> None:
    """start_new_session made us a session leader; the pty on stdin becomes our controlling terminal,
    so window changes arrive as SIGWINCH and a hang-up ends us. Ends us even if whoever started the
    server ignored SIGHUP (`nohup labyrinth serve &`: ignored signals are inherited), or an app on a
    pty whose session was gone would spin on it, reading nothing, for good."""
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def others_can_read(path: Path) -> bool:
    """Every folder down to path lets others through (o+x): nobody could import from there."""
    return all(part.stat().st_mode & stat.S_IXOTH for part in [path, *path.parents] if part.is_dir())


def drop_privileges() -> bool:
    """A viewer needs no rights: as root, it runs as nobody (its hub socket is already open). Only
    when nobody can read this Python (a pyenv under a 0700 /root cannot: `namei -l $(readlink -f
    .venv/bin/python)`); otherwise it stays root, and follow mode's refusals are its only wall."""
    stdlib = Path(os.__file__).parent
    if os.geteuid() != 0 or not (others_can_read(stdlib) and others_can_read(Path(__file__).parent)):
        return False
    nobody = pwd.getpwnam("nobody")
    os.setgroups([])
    os.setgid(nobody.pw_gid)
    os.setuid(nobody.pw_uid)
    return True


def presenter_source(args: argparse.Namespace) -> Source:
    """The presenter's source: a recording, a cluster (`cluster attach`'s options) or the lab."""
    if args.replay is not None:
        from labyrinth_tui.sources.replay import ReplaySource

        return ReplaySource(Path(args.replay), speed=args.speed)
    if args.kubeconfig is not None:
        from labyrinth_tui.cloud.bootstrap.inventory import load_inventory
        from labyrinth_tui.sources.cluster import ClusterSource

        inventory = load_inventory(Path(args.ssh_inventory)) if args.ssh_inventory else None
        return ClusterSource(Path(args.kubeconfig), args.context, inventory, discover=not args.no_discover)
    from labyrinth_tui.sources.lab import LabSource

    return LabSource.article(prefix=args.prefix)


def parse(argv: list[str]) -> argparse.Namespace:
    """What the serve process passes (it checked every file and option before anyone connected)."""
    parser = argparse.ArgumentParser(prog="labyrinth-serve-child")
    parser.add_argument("--role", choices=("presenter", "viewer"), required=True)
    parser.add_argument("--hub-fd", type=int, required=True)
    parser.add_argument("--replay")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--prefix", default="labyrinth")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--context")
    parser.add_argument("--ssh-inventory")
    parser.add_argument("--no-discover", action="store_true")
    parser.add_argument("--cpu-group")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    become_terminal_owner()
    hub = socket.socket(fileno=args.hub_fd)
    if args.role == "viewer":
        if args.cpu_group:
            join(args.cpu_group)
        yield_to_the_presenter()  # before the imports: 20 viewers joining at once cost ~1 s of CPU each
        os.environ["TEXTUAL_FPS"] = str(VIEWER_FPS)  # read by textual when imported, just below
    from labyrinth_tui.ui.app import make_app

    if args.role == "viewer":
        drop_privileges()
        from labyrinth_tui.sources.follow import FollowSource

        app = make_app(FollowSource(hub), follow=True)
        app.sub_title = "following the presenter"
    else:
        from labyrinth_tui.sources.follow_publish import PublishingSource

        app = make_app(PublishingSource(presenter_source(args), hub))
        app.sub_title = "presenting: the room follows what you show"
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
