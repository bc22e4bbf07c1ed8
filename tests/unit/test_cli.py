"""The command line as a user meets it: help, version, doctor (including a machine without tshark)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from labyrinth_tui import __version__
from labyrinth_tui.cli import main


def test_help_lists_every_subcommand_with_one_line_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    names = main.list_commands(click.Context(main))
    assert {"tui", "lab", "capture", "journey", "gcp"} <= set(names)
    for name in names:
        command = main.get_command(click.Context(main), name)
        assert command is not None and command.name == name
        assert name in result.output
        assert command.get_short_help_str(), f"{name} has no help"
        sub = CliRunner().invoke(main, [name, "--help"])
        assert sub.exit_code == 0, sub.output


def test_version_loads_no_command_modules() -> None:
    """`labyrinth --version` starts at once: neither SSH, the TUI nor the capture code is imported."""
    probe = (
        "import sys, runpy; sys.argv = ['labyrinth', '--version']\n"
        "try:\n    runpy.run_module('labyrinth_tui', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = ('asyncssh', 'textual', 'labyrinth_tui.probes', 'labyrinth_tui.sources',\n"
        "         'labyrinth_tui.cli.lab')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(heavy))) or 'none')"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    *shown, loaded = done.stdout.splitlines()
    assert shown == [f"labyrinth, version {__version__}"] and loaded == "none"


def test_version_from_the_script_and_python_m() -> None:
    assert __version__ in CliRunner().invoke(main, ["--version"]).output
    out = subprocess.run(
        [sys.executable, "-m", "labyrinth_tui", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"labyrinth, version {__version__}"


def _path_without(tmp_path: Path, hidden: set[str]) -> str:
    """A PATH holding every tool doctor looks for except the hidden ones."""
    from labyrinth_tui.doctor import BINARIES, OPTIONAL_BINARIES

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in [*BINARIES, *OPTIONAL_BINARIES]:
        real = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if real and name not in hidden:
            (bin_dir / name).symlink_to(real)
    return str(bin_dir)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is installed by `make setup`")
def test_doctor_tells_the_truth_when_tshark_is_hidden(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_without(tmp_path, {"tshark", "dumpcap"})}
    cmd = [sys.executable, "-m", "labyrinth_tui", "doctor"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert out.returncode == 1
    assert "✗ tshark" in out.stdout
    assert "apt-get install -y tshark" in out.stdout
    assert "something is missing" in out.stdout

    as_json = subprocess.run([*cmd, "--json"], capture_output=True, text=True, env=env, check=False)
    report = json.loads(as_json.stdout)
    assert report["ok"] is False
    missing = {c["name"] for c in report["checks"] if not c["ok"] and c["required"]}
    assert missing == {"tshark", "dumpcap"}


def test_doctor_passes_on_a_complete_machine() -> None:
    from labyrinth_tui.doctor import all_well, run_checks

    checks = run_checks()
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == (0 if all_well(checks) else 1)
    if os.geteuid() == 0 and all(shutil.which(n) for n in ("tshark", "ncat", "iptables")):
        assert result.exit_code == 0, result.output
