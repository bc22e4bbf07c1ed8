"""Wall 3: only nodes/commands.py builds a command line that a shell will read; everything else passes argv.

An AST scan of src/: outside commands.py there is no shlex.quote/shlex.join, no shell=True, no
create_subprocess_shell/os.system/os.popen, no command given as a string (literal, f-string,
concatenation, .format or str.join) to create_process/run/Popen/…, and no `sh -c <built string>`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "labyrinth_tui"
ALLOWED = SRC / "nodes" / "commands.py"
RUNNERS = {"create_process", "run", "Popen", "call", "check_call", "check_output", "create_subprocess_exec"}
SHELLS = {"sh", "bash", "/bin/sh", "/bin/bash", "dash", "zsh"}


def _built_string(node: ast.expr) -> bool:
    """A string made at run time from pieces: the way injection gets in."""
    if isinstance(node, ast.JoinedStr | ast.BinOp):
        return True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr in ("format", "join") and not (
            isinstance(node.func.value, ast.Name) and node.func.value.id in ("os", "Path")
        )
    return False


def violations(source: str, path: str = "<src>") -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"{path}:{getattr(node, 'lineno', '?')}"
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and (node.value.id, node.attr) in (("shlex", "quote"), ("shlex", "join"))
        ):
            found.append(f"{where}: shlex.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "shlex":
            names = [a.name for a in node.names if a.name in ("quote", "join")]
            found += [f"{where}: from shlex import {name}" for name in names]
        if not isinstance(node, ast.Call):
            continue
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        owner = node.func.value if isinstance(node.func, ast.Attribute) else None
        if name in ("create_subprocess_shell", "system", "popen") and (
            name == "create_subprocess_shell" or (isinstance(owner, ast.Name) and owner.id == "os")
        ):
            found.append(f"{where}: {name}()")
        falsy = (
            isinstance(k.value, ast.Constant) and not k.value.value for k in node.keywords if k.arg == "shell"
        )
        if not all(falsy):
            found.append(f"{where}: shell=True")
        # create_subprocess_exec("ip", "netns", …) is an argv spelled out: only one lone string is a line
        spelled_argv = name == "create_subprocess_exec" and len(node.args) > 1
        if name in RUNNERS and node.args and not spelled_argv:
            first = node.args[0]
            if (isinstance(first, ast.Constant) and isinstance(first.value, str)) or _built_string(first):
                found.append(f"{where}: {name}() given a command string")
        # sh -c <string built here>, in an argv list or as separate arguments
        for seq in [node.args, *(e.elts for e in node.args if isinstance(e, ast.List | ast.Tuple))]:
            for i in range(len(seq) - 2):
                a, b, c = seq[i], seq[i + 1], seq[i + 2]
                if (
                    isinstance(a, ast.Constant) and a.value in SHELLS
                    and isinstance(b, ast.Constant) and b.value == "-c"
                    and _built_string(c)
                ):  # fmt: skip
                    found.append(f"{where}: {a.value} -c with a built string")
    return found


def test_only_commands_py_builds_shell_lines() -> None:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        if path != ALLOWED:
            problems += violations(path.read_text(), str(path.relative_to(SRC)))
    assert problems == [], "build shell lines in nodes/commands.py only:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "bad",
    [
        "import shlex\nx = shlex.quote(name)",
        "import shlex\nx = shlex.join(argv)",
        "from shlex import quote",
        "await conn.create_process('ip link show ' + name)",
        "await conn.create_process(f'tshark -i {iface}')",
        "await conn.run('ls -l')",
        "await conn.create_process(' '.join(argv))",
        "subprocess.run(cmd, shell=True)",
        "await asyncio.create_subprocess_shell(cmd)",
        "os.system('ip netns add ' + name)",
        "subprocess.Popen(['sh', '-c', f'echo {x}'])",
        "await asyncio.create_subprocess_exec('bash', '-c', 'ip link del {}'.format(n))",
    ],
)
def test_the_scan_catches_each_way_of_building_a_shell_line(bad: str) -> None:
    assert violations(bad), bad


@pytest.mark.parametrize(
    "fine",
    [
        "await conn.create_process(shell_line(argv))",
        "subprocess.run(['ip', '-n', ns, 'link'], check=True)",
        "await session.run([*prefix, 'sh', '-s'], input=script)",
        "subprocess.Popen(['sh', '-c', SCRIPT, 'sh', name])",
        "x = shlex.split(text)",
        "subprocess.run(argv, shell=False)",
        "p = os.path.join(a, b)",
    ],
)
def test_the_scan_lets_argv_lists_through(fine: str) -> None:
    assert violations(fine) == []
