"""System checks behind `labyrinth doctor`: every tool and privilege the app needs, and the fix for each."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CAP_NET_ADMIN = 12
CAP_SYS_ADMIN = 21  # setns() into a node's netns


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True
    needed_for: str = ""


# binary → (Debian package, what it is needed for)
BINARIES: dict[str, tuple[str, str]] = {
    "ip": ("iproute2", "lab: namespaces, veths, VXLAN; discovery"),
    "tshark": ("tshark", "live captures"),
    "dumpcap": ("tshark", "live captures (tshark's capture engine)"),
    "editcap": ("wireshark-common", "recordings: trimming, pcapng, a live packet's bytes"),
    "mergecap": ("wireshark-common", "recordings: joining a stream's tshark runs"),
    "sshd": ("openssh-server", "lab: one sshd per node"),
    "ssh-keygen": ("openssh-client", "lab: host and client keys"),
    "dnsmasq": ("dnsmasq-base", "lab: the DNS pod (CoreDNS stand-in)"),
    "ncat": ("ncat", "the article's nc traffic"),
    "tcpdump": ("tcpdump", "live captures (immediate mode, piped into tshark)"),
    "iptables": ("iptables", "lab: kube-proxy rules"),
    "iptables-save": ("iptables", "evidence: kube-proxy counters"),
    "iptables-restore": ("iptables", "lab: kube-proxy rules"),
    "clang": ("clang llvm libbpf-dev", "lab: compiling the eBPF datapath (once per source hash)"),
}
OPTIONAL_BINARIES: dict[str, tuple[str, str]] = {
    "bpftool": ("bpftool", "evidence: eBPF attachments (optional)"),
    "tmux": ("tmux", "driving the TUI in tests and demos (optional)"),
}


VERSION_FLAG = {"tshark": "--version", "ip": "-V", "dnsmasq": "--version", "ncat": "--version"}


def _apt_fix(package: str) -> str:
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install -y {package}   (or: make setup)"


def _effective_caps() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return 0


def check_privilege() -> Check:
    """The EFFECTIVE capabilities decide, not uid 0: root in a container may lack CAP_NET_ADMIN."""
    caps = _effective_caps()
    have = all(caps & (1 << bit) for bit in (CAP_NET_ADMIN, CAP_SYS_ADMIN))
    who = "root" if os.geteuid() == 0 else "not root"
    if have:
        return Check("privilege", True, f"{who}, with CAP_NET_ADMIN and CAP_SYS_ADMIN", needed_for="lab")
    return Check(
        "privilege",
        False,
        f"{who} and without CAP_NET_ADMIN + CAP_SYS_ADMIN (CapEff {caps:#x}): "
        "the lab cannot create network namespaces",
        fix=(
            "run with CAP_NET_ADMIN and CAP_SYS_ADMIN (a container: --cap-add NET_ADMIN --cap-add SYS_ADMIN)"
            if os.geteuid() == 0
            else "sudo labyrinth …   (or run `make run`, which uses sudo when not root)"
        ),
        needed_for="lab",
    )


def _version(path: str, flag: str) -> str:
    try:
        out = subprocess.run([path, flag], capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0][:80] if text else ""


def check_binary(name: str, package: str, needed_for: str, *, required: bool = True) -> Check:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        return Check(name, False, "not found on PATH", _apt_fix(package), required, needed_for)
    flag = VERSION_FLAG.get(name)
    version = _version(path, flag) if flag else ""
    return Check(name, True, f"{path} {version}".strip(), required=required, needed_for=needed_for)


def check_gcp_credentials() -> Check:
    """Whether `labyrinth gcp` would find ADC and a project — from files only, no network."""
    from labyrinth_tui.cloud.gcp.auth import ADC_HELP, PROJECT_HELP, find_adc, find_project

    adc, project = find_adc(), find_project()
    parts = [f"ADC: {adc.value} ({adc.source})" if adc else "no ADC file"]
    parts.append(f"project {project.value!r} ({project.source})" if project else "no project")
    fixes = ([] if adc else [ADC_HELP]) + ([] if project else [PROJECT_HELP])
    return Check(
        "gcp credentials",
        adc is not None and project is not None,
        "; ".join(parts),
        fix="; ".join(fixes),
        required=False,
        needed_for="labyrinth gcp (real clusters; on a GCE VM the metadata server may serve ADC too)",
    )


def check_libbpf() -> Check:
    """libbpf.so.1 (loads the lab's programs, through ctypes) and libbpf-dev's headers (compiles them)."""
    from labyrinth_tui.lab.bpf.libbpf import library_path

    path = library_path()
    headers = Path("/usr/include/bpf/bpf_helpers.h")
    missing = [pkg for pkg, ok in (("libbpf1", path is not None), ("libbpf-dev", headers.exists())) if not ok]
    if missing:
        what = "libbpf.so.1 not found" if path is None else f"{headers} not found"
        return Check("libbpf", False, what, _apt_fix(" ".join(missing)), needed_for="lab: the eBPF datapath")
    return Check("libbpf", True, f"{path}; {headers.parent}", needed_for="lab: the eBPF datapath")


def run_checks() -> list[Check]:
    checks = [check_privilege()]
    checks += [check_binary(n, pkg, why) for n, (pkg, why) in BINARIES.items()]
    checks.append(check_libbpf())
    checks += [check_binary(n, pkg, why, required=False) for n, (pkg, why) in OPTIONAL_BINARIES.items()]
    checks.append(check_gcp_credentials())
    return checks


def all_well(checks: list[Check]) -> bool:
    return all(c.ok for c in checks if c.required)
