"""The wheel carries styles/: installed into a fresh venv, the app starts headless with them applied."""

from __future__ import annotations

import subprocess
import sysconfig
import venv
from pathlib import Path

from tests.conftest import ROOT

PROBE = """
import asyncio, json
import labyrinth_tui
from labyrinth_tui.ui.app import make_app
from labyrinth_tui.ui.styles import styles_dir

async def main():
    app = make_app(None)
    async with app.run_test(size=(100, 30)):
        provision = app.screen.query_one("#provision")
        topology = app.screen.query_one("#topology")
        print(json.dumps({
            "package": labyrinth_tui.__file__,
            "styles": str(styles_dir()),
            "provision_max_height": str(provision.styles.max_height),
            "topology_border": topology.styles.border_left[0],
        }))

asyncio.run(main())
"""


def test_wheel_installs_and_applies_styles(tmp_path: Path, wheel: Path) -> None:
    env_dir = tmp_path / "fresh"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True
    )
    # the fresh venv holds our wheel; its third-party dependencies come from the test venv, whose
    # editable labyrinth_tui is not importable this way (.pth files are not read from PYTHONPATH)
    deps = sysconfig.get_paths()["purelib"]
    out = subprocess.run(
        [str(python), "-c", PROBE],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": deps, "PATH": "/usr/bin:/bin", "TERM": "xterm-256color"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    import json

    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["package"].startswith(str(env_dir)), seen
    assert seen["styles"].startswith(str(env_dir)), seen
    assert Path(seen["styles"], "main.tcss").read_text() == (ROOT / "styles" / "main.tcss").read_text()
    assert seen["provision_max_height"] == "10"  # from styles/main.tcss
    assert seen["topology_border"] == "round"
