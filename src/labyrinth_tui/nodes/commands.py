"""The only place a command line that a shell will read is built: names are validated, arguments quoted.

Everything else in the package passes argv lists. An SSH "exec" request carries one string that the
node's login shell parses, so `shell_line` turns argv into that string with every argument quoted;
`batch_script` writes the small scripts that run several commands in one round trip.
"""

from __future__ import annotations

import re
import secrets
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

INTERFACE_RE: Final = re.compile(r"[A-Za-z0-9_.@-]{1,15}")
NETNS_RE: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NODE_NAME_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
SECTION_RE: Final = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MARKER_RE: Final = re.compile(r"[A-Za-z0-9=_:-]{8,64}")
CAPTURE_FILTER_MAX: Final = 1024


class UnsafeArgument(ValueError):
    """`value` may not reach a shell as a `what`: it breaks `rule`."""

    def __init__(self, value: object, rule: str, what: str = "argument") -> None:
        super().__init__(f"unsafe {what} {value!r}: {rule}")
        self.value = value
        self.rule = rule
        self.what = what


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise UnsafeArgument(value, f"must be text, not {type(value).__name__}", what)
    return value


def _name(value: object, pattern: re.Pattern[str], rule: str, what: str) -> str:
    text = _text(value, what)
    # fullmatch, not `$`: `$` also matches before a trailing newline
    if not pattern.fullmatch(text):
        raise UnsafeArgument(text, rule, what)
    if text.startswith("-"):
        raise UnsafeArgument(text, "must not start with '-' (it would read as an option)", what)
    if text in (".", ".."):
        raise UnsafeArgument(text, "'.' and '..' name directories, not objects", what)
    return text


def validate_interface(name: object) -> str:
    """A Linux interface name: 1-15 of A-Z a-z 0-9 _ . @ -, not starting with '-'."""
    return _name(name, INTERFACE_RE, "use 1-15 of A-Z a-z 0-9 _ . @ -", "interface name")


def validate_netns(name: object) -> str:
    """A named network namespace (a file in /run/netns): 1-64 of A-Z a-z 0-9 _ . -, no leading '-'."""
    return _name(name, NETNS_RE, "use 1-64 of A-Z a-z 0-9 _ . -", "netns name")


def validate_node_name(name: object) -> str:
    """A node's name: starts with a letter or digit, then up to 62 of A-Z a-z 0-9 _ . -."""
    return _name(name, NODE_NAME_RE, "use a letter or digit, then up to 62 of A-Z a-z 0-9 _ . -", "node name")


def validate_capture_filter(text: object) -> str:
    """A BPF capture filter: printable ASCII only (no NUL, newline or tab), at most 1024 characters."""
    value = _text(text, "capture filter")
    if len(value) > CAPTURE_FILTER_MAX:
        raise UnsafeArgument(value, f"longer than {CAPTURE_FILTER_MAX} characters", "capture filter")
    bad = next((c for c in value if not " " <= c <= "~"), None)
    if bad is not None:
        raise UnsafeArgument(value, f"only printable ASCII is allowed, found {bad!r}", "capture filter")
    return value


def validate_pgid(pgid: object) -> int:
    """A process group id we may signal: an int above 1 (0, 1 and negatives mean "everyone")."""
    if isinstance(pgid, bool) or not isinstance(pgid, int) or pgid <= 1:
        raise UnsafeArgument(pgid, "must be an integer greater than 1", "process group")
    return pgid


def pipeline(first: Sequence[str], *rest: Sequence[str]) -> list[str]:
    """`first | second | …` as an argv for the node: `sh -c`, each quoted; the status is the last's."""
    if not rest:
        raise UnsafeArgument(first, "a pipeline needs at least two commands", "argv")
    return ["sh", "-c", " | ".join(shell_line(argv) for argv in (first, *rest))]


def shell_line(argv: Sequence[str]) -> str:
    """argv as one command line for a POSIX shell: each argument arrives as exactly one literal word."""
    if isinstance(argv, str) or not argv:
        raise UnsafeArgument(argv, "give a non-empty list of arguments, not a string", "argv")
    words = []
    for arg in argv:
        text = _text(arg, "argument")
        if "\0" in text:
            raise UnsafeArgument(text, "NUL cannot be carried in an argument", "argument")
        words.append(shlex.quote(text))
    return " ".join(words)


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    """argv run inside named netns `netns` (`ip netns exec NS …`)."""
    return ["ip", "netns", "exec", validate_netns(netns), *argv]


# Why setsid: sshd already makes each session a process group, but the login shell may or may not
# fork before our command; setsid makes `$$` the leader of a fresh group for certain, so
# `kill -TERM -<pgid>` reaches the command and every child it starts (tshark's dumpcap).
_PRINT_PGID_THEN_EXEC: Final = 'printf "%s\\n" "$$"; exec "$@"'


def in_process_group(argv: Sequence[str]) -> list[str]:
    """argv in a process group of its own; its first output line is the group id, then argv's output."""
    if not argv:
        raise UnsafeArgument(argv, "give a non-empty list of arguments", "argv")
    return ["setsid", "-w", "sh", "-c", _PRINT_PGID_THEN_EXEC, "sh", *argv]


# bash's /dev/tcp (or /dev/udp): stdin to the connection, then the write side closes as bash exits.
# Host and port come as $1 and $2, never spliced into the script.
_BASH_DIAL: Final = 'exec 3<>"/dev/$0/$1/$2" && cat >&3'


def bash_dial(proto: str, host: str, port: int) -> list[str]:
    """A pod's client where only bash is there: `bash -c` reading stdin into /dev/tcp/HOST/PORT."""
    if proto not in ("tcp", "udp"):
        raise UnsafeArgument(proto, "tcp or udp", "protocol")
    return ["bash", "-c", _BASH_DIAL, proto, _text(host, "host"), str(int(port))]


# TERM the group, wait up to $2 tenths of a second, then KILL what is left and wait again; exit 0 once
# no live process of it is left. Zombies do not count: they are dead, and when init reaps them is not
# ours to wait for. One round trip; a failed kill (gone, or not ours) is judged by what ps sees after.
# `env kill`: the external kill takes `-- -PGID` everywhere; dash's builtin cannot signal a group.
_END_GROUP: Final = (
    "alive() { ps -e -o pgid=,stat= | awk -v g=\"$1\" '$1 == g && $2 !~ /^Z/ { n++ } END { exit !n }'; }; "
    'for sig in TERM KILL; do env kill -"$sig" -- "-$1" 2>/dev/null; i=0; '
    'while alive "$1"; do [ "$i" -ge "$2" ] && continue 2; sleep 0.1; i=$((i+1)); done; exit 0; done; exit 1'
)


def end_process_group(pgid: int, grace: float = 3.0) -> list[str]:
    """TERM group `pgid`, KILL it if any of it is left after `grace` s; exits 0 once none of it is left.

    Run it with the same privilege as the command (e.g. behind `sudo -n`) or the signals may not land.
    """
    tenths = max(1, round(grace * 10))
    return ["sh", "-c", _END_GROUP, "sh", str(validate_pgid(pgid)), str(tenths)]


# --- batched scripts: several commands, one round trip, output cut by marker lines ---------------


class _Placeholder:
    """Stands for the netns the surrounding ForEachNetns loop is at, as one shell word (`shell`)."""

    def __init__(self, shell: str, name: str) -> None:
        self.shell, self.name = shell, name

    def __repr__(self) -> str:
        return self.name


NETNS: Final = _Placeholder('"$ns"', "NETNS")  # its name
# nsenter's option entering its network namespace only: unlike `ip -n`/`ip netns exec`, no mount
# namespace is unshared (a copy of every /run/netns mount per call: O(namespaces) each)
NETNS_ENTER: Final = _Placeholder('"--net=/run/netns/$ns"', "NETNS_ENTER")
Arg = str | _Placeholder


@dataclass(frozen=True, slots=True)
class Section:
    """One command of a batch; its stdout appears between `<marker> begin <name>` and `… end <name> <rc>`."""

    name: str
    argv: tuple[Arg, ...]
    # fed to the command as a here-document (printable ASCII lines); without it stdin is /dev/null
    stdin: str | None = None
    # the same begin/end markers on stderr too: each command's own words can be told apart there
    mark_stderr: bool = False


HEREDOC_END: Final = "LABYRINTH_STDIN"


def _heredoc(text: str) -> str:
    lines = text.splitlines()
    for line in lines:
        bad = next((c for c in line if not " " <= c <= "~"), None)
        if bad is not None or line == HEREDOC_END:
            why = f"found {bad!r}" if bad else f"a line may not read {HEREDOC_END}"
            raise UnsafeArgument(text, f"section stdin is printable ASCII lines; {why}", "stdin")
    # quoted delimiter: the shell expands nothing inside
    return f" <<'{HEREDOC_END}'\n" + "".join(line + "\n" for line in lines) + HEREDOC_END


@dataclass(frozen=True, slots=True)
class ForEachNetns:
    """Run `sections` once per named netns on the node (`ip netns list` read by the node itself).

    Each round starts with a `<marker> netns <name>` line, the loop ends with `<marker> netns-done`.
    With `only_with_id`, only namespaces that
    have an id relative to the namespace the script runs in (those linked to it, e.g. by a veth).
    Names that break the netns rule are skipped on the node, never interpolated.
    """

    sections: tuple[Section, ...]
    only_with_id: bool = True
    # one process printing what the whole loop would, the marker as its last argument (e.g. python3
    # entering each netns itself): the loop runs only when it fails, having printed nothing
    dump: tuple[str, ...] | None = None


def new_marker() -> str:
    """A marker no command output will contain by chance."""
    return f"=LABYRINTH-{secrets.token_hex(8)}="


def _render_section(marker: str, section: Section, in_loop: bool) -> list[str]:
    if not SECTION_RE.fullmatch(section.name):
        raise UnsafeArgument(section.name, "section names use a-z 0-9 _ -", "section name")
    words = []
    for arg in section.argv:
        if isinstance(arg, _Placeholder):
            if not in_loop:
                raise UnsafeArgument(arg, "NETNS only means something inside ForEachNetns", "argument")
            words.append(arg.shell)  # $ns: checked by the loop (A-Za-z0-9_.- only, no leading -)
        else:
            words.append(shell_line([arg]))
    if not words:
        raise UnsafeArgument(section.argv, "a section needs a command", "argv")
    begin = shell_line(["printf", "%s begin %s\\n", marker, section.name])
    # the end marker starts with a newline: output without a final newline still ends before it
    end = shell_line(["printf", "\\n%s end %s %s\\n", marker, section.name])
    # stdin from /dev/null (or a here-document): the script itself arrives on stdin, and must not be
    # eaten by a command. A here-document is one element with newlines: indenting only its first line
    # keeps the delimiter line at column 0.
    stdin = " </dev/null" if section.stdin is None else _heredoc(section.stdin)
    if not section.mark_stderr:
        return [begin, " ".join(words) + stdin, end + ' "$?"']
    # the status kept first: "$?" after the first end marker would be printf's
    return [begin, begin + " >&2", " ".join(words) + stdin, "_rc=$?", end + ' "$_rc"', end + ' "$_rc" >&2']


def batch_script(marker: str, items: Sequence[Section | ForEachNetns]) -> str:
    """A POSIX sh script (feed it to `sh -s`) running each item in order, its output cut by markers."""
    if not MARKER_RE.fullmatch(marker):
        raise UnsafeArgument(marker, "markers use 8-64 of A-Z a-z 0-9 = _ : -", "marker")
    lines = [
        # C locale first: the bracket ranges below must mean ASCII
        "LC_ALL=C; export LC_ALL",
        'PATH="$PATH:/usr/sbin:/sbin:/usr/bin:/bin"; export PATH',
    ]
    for item in items:
        if isinstance(item, Section):
            lines += _render_section(marker, item, in_loop=False)
            continue
        loop = ["ip netns list 2>/dev/null </dev/null | while read -r ns rest; do"]
        loop.append("  case \"$ns\" in ''|-*|.|..|*[!A-Za-z0-9_.-]*) continue ;; esac")
        loop.append('  [ "${#ns}" -le 64 ] || continue')
        if item.only_with_id:
            loop.append("  case \"$rest\" in '(id: '*) ;; *) continue ;; esac")
        loop.append("  " + shell_line(["printf", "%s netns %s\\n", marker]) + ' "$ns"')
        for section in item.sections:
            loop += ["  " + line for line in _render_section(marker, section, in_loop=True)]
        loop.append("done")
        loop.append(shell_line(["printf", "%s netns-done\\n", marker]))
        if item.dump is None:
            lines += loop
        else:
            lines.append(f"if {shell_line([*item.dump, marker])} </dev/null; then :; else")
            lines += ["  " + line for line in loop]
            lines.append("fi")
    return "\n".join(lines) + "\n"


# --- a command that ends when nobody reads it any more --------------------------------------------

# Why: when the SSH client dies (app killed, connection dropped), sshd closes the command's pipes but
# signals nothing; tshark waiting for packets never notices and its dumpcap lives on (docs/lab-facts.md). So a
# watcher in the same group writes an empty line every $1 s; once that write fails (EPIPE: SIGPIPE is
# ignored in the watcher only), it ends the whole group, removes $2 (the capture's files) if given, and
# KILLs what is left. It stops by itself when the command ends, so the channel closes with it.
_END_WITH_READER: Final = (
    'i=$1; d=$2; shift 2; g=$(ps -o pgid= -p "$$" | tr -d " "); "$@" & t=$!; '
    "( trap '' PIPE; while kill -0 \"$t\" 2>/dev/null; do "
    "env printf '\\n' 2>/dev/null || { trap '' TERM; env kill -TERM -- \"-$g\" 2>/dev/null; sleep 2; "
    '[ -n "$d" ] && rm -rf -- "$d"; env kill -KILL -- "-$g" 2>/dev/null; exit 0; }; '
    'sleep "$i" >/dev/null; done ) & w=$!; wait "$t"; rc=$?; kill "$w" 2>/dev/null; '
    # the command may have died of SIGPIPE itself, before the watcher noticed: same clean-up
    "( trap '' PIPE; env printf '\\n' 2>/dev/null ) || { [ -n \"$d\" ] && rm -rf -- \"$d\"; "
    "trap '' TERM; env kill -TERM -- \"-$g\" 2>/dev/null; }; "
    'exit "$rc"'
)
_WORKDIR_RE: Final = re.compile(r"/tmp/labyrinth-[A-Za-z0-9_.-]{1,64}")


def validate_workdir(path: object) -> str:
    """A scratch directory of ours on a node: /tmp/labyrinth-<1-64 of A-Z a-z 0-9 _ . ->."""
    text = _text(path, "work directory")
    if not _WORKDIR_RE.fullmatch(text) or "/.." in text:
        raise UnsafeArgument(text, "use /tmp/labyrinth-<1-64 of A-Z a-z 0-9 _ . ->", "work directory")
    return text


def ended_with_reader(argv: Sequence[str], *, interval: float = 0.5, workdir: str = "") -> list[str]:
    """argv, its group ended (and `workdir` removed) once its stdout has no reader; stdout gains empty lines.

    Wrap it in `in_process_group` (or put it behind `sudo -n` first): the watcher ends its own group.
    """
    if not argv:
        raise UnsafeArgument(argv, "give a non-empty list of arguments", "argv")
    if not 0.05 <= interval <= 10.0:
        raise ValueError("the reader check runs every 0.05-10 s")
    where = validate_workdir(workdir) if workdir else ""
    return ["sh", "-c", _END_WITH_READER, "sh", f"{interval:g}", where, *argv]


# --- node ↔ node port probe (`labyrinth cluster check`) ----------------------------------------------

# Prints "<tool> <exit status>" then what the tool said. bash's /dev/tcp under `timeout` where both are
# there (exit 124: no answer in time), else `nc -z -w`. UDP: one byte sent on a connected socket, then a
# read of $4 seconds: an ICMP port-unreachable makes that read fail with "Connection refused"; silence
# (status 142, the read's own timeout) is all an open or a filtered port ever says.
# $1 proto, $2 host, $3 port, $4 seconds: never spliced into the script.
_PORT_PROBE: Final = (
    "p=$1 h=$2 n=$3 t=$4; "
    "if command -v bash >/dev/null 2>&1 && command -v timeout >/dev/null 2>&1; then "
    'if [ "$p" = udp ]; then '
    'out=$(bash -c \'exec 3<>"/dev/udp/$0/$1" && printf x >&3 && read -r -t "$2" -n 1 <&3\' '
    '"$h" "$n" "$t" 2>&1); '
    'else out=$(timeout "$t" bash -c \'exec 3<>"/dev/tcp/$0/$1"\' "$h" "$n" 2>&1); fi; '
    'echo "bash $?"; '
    "elif command -v nc >/dev/null 2>&1; then "
    'if [ "$p" = udp ]; then out=$(nc -v -u -z -w "$t" "$h" "$n" 2>&1); '
    'else out=$(nc -v -z -w "$t" "$h" "$n" 2>&1); fi; echo "nc $?"; '
    'else echo "none 127"; out="neither bash with timeout nor nc is installed"; fi; '
    'printf "%s\\n" "$out"'
)


def port_probe(proto: str, host: str, port: int, seconds: float) -> list[str]:
    """From this node: can `host`:`port` be reached over `proto`? See _PORT_PROBE for what is printed."""
    if proto not in ("tcp", "udp"):
        raise UnsafeArgument(proto, "tcp or udp", "protocol")
    if not 0 < int(port) < 65536:
        raise UnsafeArgument(port, "a port 1-65535", "port")
    return ["sh", "-c", _PORT_PROBE, "sh", proto, _text(host, "host"), str(int(port)), f"{seconds:g}"]


# --- what a person calls a command ----------------------------------------------------------------

_CAPTURE_TOOLS: Final = frozenset({"tshark", "dumpcap", "tcpdump"})
_SHOWN_WORDS: Final = 4
_WRAPPER_HEADS: Final = (["setsid", "-w", "sh", "-c", _PRINT_PGID_THEN_EXEC], ["sh", "-c", _END_WITH_READER])


def describe(argv: Sequence[str], node: str) -> str:
    """argv as the user knows it, for messages: "tcpdump on node-1/ens4", "`ip -j addr` on node-2".

    The wrappers this module adds (sudo -n, setsid, the reader watcher, `ip netns exec`, a pipeline's
    `sh -c`) are peeled off: "sh -c 'i=$1; d=$2; shift 2; …'" means nothing to the person reading.
    """
    words = [str(w) for w in argv]
    netns = ""
    while words:
        if words[0] == "sudo":
            words = words[2:] if words[1:2] == ["-n"] else words[1:]
        elif any(words[: len(head)] == head for head in _WRAPPER_HEADS):
            words = words[6:]  # in_process_group and ended_with_reader both put argv at word 6
        elif words[:3] == ["sh", "-c", _END_GROUP]:
            return f"ending process group {words[4] if len(words) > 4 else '?'} on {node}"
        elif words[:3] == ["ip", "netns", "exec"] and len(words) > 4:
            netns, words = words[3], words[4:]
        elif words[:2] == ["python3", "-c"] and len(words) > 8 and words[6].isdigit():
            # the capture relay (probes/capture_swap.py): SCRIPT prefix every keep N canary <the N words
            # of the capture it starts> tshark…: the capture is what the person asked for
            words = words[8 : 8 + int(words[6])]
        elif words[:2] == ["sh", "-c"] and len(words) == 3:
            try:  # a pipeline: the first command is the one that names it
                words = shlex.split(words[2].split(" | ", 1)[0])
            except ValueError:
                return f"a shell script on {node}"
            if words[:2] == ["sh", "-c"]:
                break
        else:
            break
    if not words:
        return f"a command on {node}"
    program = words[0].rsplit("/", 1)[-1]
    where = f"{node} (netns {netns})" if netns else node
    if program in _CAPTURE_TOOLS and "-i" in words[:-1]:
        return f"{program} on {where}/{words[words.index('-i') + 1]}"
    shown = " ".join([program, *words[1:_SHOWN_WORDS]])
    return f"`{shown[:60]}` on {where}"
