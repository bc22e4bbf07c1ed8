"""Compile the shipped C programs with `clang -target bpf`, once per source hash, into a cache folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sysconfig
import tempfile
from pathlib import Path

SOURCES = Path(__file__).with_name("csrc")
FAMILIES = ("bpf_lxc", "bpf_overlay", "bpf_host")
SYSTEM_CACHE = Path("/var/cache/labyrinth/bpf")


class CompileError(RuntimeError):
    """clang is missing or refused a program; the message is clang's own (its last lines)."""


def source_hash() -> str:
    """One hash over every shipped source and header, and the clang argv: what the objects depend on."""
    digest = hashlib.sha256(" ".join(clang_argv(Path("x.c"), Path("x.o"))).encode())
    for path in sorted(SOURCES.rglob("*")):
        if path.suffix in (".c", ".h"):
            digest.update(str(path.relative_to(SOURCES)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """/var/cache/labyrinth/bpf for root; the user's cache dir otherwise ($LABYRINTH_BPF_CACHE wins)."""
    override = os.environ.get("LABYRINTH_BPF_CACHE")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return SYSTEM_CACHE
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "labyrinth" / "bpf"


def multiarch_include() -> list[str]:
    """Debian keeps asm/types.h under /usr/include/<multiarch>; clang -target bpf does not look there."""
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    folder = Path("/usr/include") / arch
    return [f"-I{folder}"] if arch and folder.is_dir() else []


def clang_argv(source: Path, output: Path) -> list[str]:
    return [
        "clang",
        "-O2",
        "-g",
        "-Wall",
        "-Werror",
        "-target",
        "bpf",
        *multiarch_include(),
        f"-I{SOURCES}",
        "-c",
        str(source),
        "-o",
        str(output),
    ]


def cached(cache: Path | None = None) -> bool:
    """Whether this source hash is compiled already (then `lab up` needs no clang)."""
    folder = (cache or cache_root()) / source_hash()
    return all((folder / f"{family}.o").exists() for family in FAMILIES)


def objects(cache: Path | None = None) -> dict[str, Path]:
    """family → compiled object, compiling only when this source hash has no objects yet."""
    folder = (cache or cache_root()) / source_hash()
    wanted = {family: folder / f"{family}.o" for family in FAMILIES}
    if all(path.exists() for path in wanted.values()):
        return wanted
    compile_into(folder)
    return wanted


def compile_into(folder: Path) -> None:
    """Compile every family into a scratch folder, then rename it into place (no half-written cache)."""
    if shutil.which("clang") is None:
        raise CompileError(
            "clang is not installed: apt-get install -y clang llvm libbpf-dev (or: make setup)"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".build-", dir=folder.parent))
    try:
        for family in FAMILIES:
            argv = clang_argv(SOURCES / f"{family}.c", scratch / f"{family}.o")
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                tail = "\n".join(done.stderr.strip().splitlines()[-8:])
                raise CompileError(f"clang refused {family}.c:\n{tail}")
        try:
            scratch.rename(folder)
        except OSError:
            if not folder.exists():  # another process won the race: its objects are the same
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
