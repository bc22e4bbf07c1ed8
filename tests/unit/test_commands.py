"""commands.py: hostile names are refused, or reach a real /bin/sh as ONE literal argument."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labyrinth_tui.nodes.commands import (
    NETNS,
    ForEachNetns,
    Section,
    UnsafeArgument,
    batch_script,
    end_process_group,
    in_netns,
    in_process_group,
    pipeline,
    shell_line,
    validate_capture_filter,
    validate_interface,
    validate_netns,
    validate_node_name,
)

HOSTILE = [
    "a;id",
    "$(id)",
    "`id`",
    "-w/x",
    "-i",
    "a'b",
    'a"b',
    "a b",
    "a\nb",
    "eth0\n",  # `$` in a regex would let this one through
    "a|b",
    "a&b",
    ">x",
    "*",
    "~",
    "$HOME",
    "a\\b",
    "..",
    ".",
    "",
    "\x00",
    "eth0\x00",
    "é",
    "ｅｔｈ０",  # fullwidth letters look like eth0
    "ΑΒΓ",
    "e\u200bth0",  # a zero-width space hides inside
]

# text a shell can receive: any unicode but NUL and lone surrogates (not encodable as argv bytes)
ARG_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=40)


def sh_argv(argv: list[str]) -> list[str]:
    """What a real /bin/sh hands to a program when it reads shell_line(argv)."""
    line = shell_line(["printf", "%s\\0", *argv])
    out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, check=True).stdout
    return [part.decode() for part in out.split(b"\0")[:-1]]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused_everywhere(name: str) -> None:
    for validate in (validate_interface, validate_netns, validate_node_name):
        with pytest.raises(UnsafeArgument) as info:
            validate(name)
        assert info.value.value == name and info.value.rule


def test_interface_names_stop_at_15_bytes() -> None:
    assert validate_interface("lxc1ba60d50596c") == "lxc1ba60d50596c"  # 15: a Cilium host veth
    for name in ("x" * 16, "é" * 8, "lxc1ba60d50596c0"):
        with pytest.raises(UnsafeArgument, match="1-15"):
            validate_interface(name)
    assert validate_netns("labyrinth." + "0" * 36) and validate_node_name("gke-node-1.example")


@pytest.mark.parametrize("name", [*HOSTILE, "x" * 16])
def test_hostile_names_quoted_arrive_as_one_literal_argument(name: str) -> None:
    if "\x00" in name:
        with pytest.raises(UnsafeArgument, match="NUL"):
            shell_line(["echo", name])
    else:
        assert sh_argv([name, "after"]) == [name, "after"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.one_of(
        st.sampled_from(HOSTILE),
        ARG_TEXT,
        st.from_regex(r"[A-Za-z0-9_.@-]{1,16}", fullmatch=True),  # near the rule, so many are accepted
    )
)
def test_any_interface_name_is_refused_or_arrives_literally(name: str) -> None:
    try:
        accepted = validate_interface(name)
    except UnsafeArgument as exc:
        assert exc.value == name
        return
    assert 1 <= len(accepted.encode()) <= 15 and not accepted.startswith("-")
    assert sh_argv(["ip", "link", "show", "dev", accepted]) == ["ip", "link", "show", "dev", accepted]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=st.lists(ARG_TEXT, min_size=1, max_size=4))
def test_any_argv_reaches_sh_unchanged(args: list[str]) -> None:
    assert sh_argv(args) == args


@settings(max_examples=150, deadline=None)
@given(args=st.lists(ARG_TEXT, min_size=1, max_size=3))
def test_the_process_group_wrapper_prints_the_group_then_passes_argv_unchanged(args: list[str]) -> None:
    line = shell_line(in_process_group(["printf", "%s\\0", *args]))
    out = subprocess.run(["/bin/sh", "-c", line], capture_output=True, check=True).stdout
    pgid, rest = out.split(b"\n", 1)
    assert int(pgid) > 1
    assert [part.decode() for part in rest.split(b"\0")[:-1]] == args


def test_capture_filters_printable_ascii_only() -> None:
    assert validate_capture_filter("udp port 8472 and host 10.168.0.4") == "udp port 8472 and host 10.168.0.4"
    assert validate_capture_filter("") == ""
    for bad in ("udp\nport 53", "a\x00", "tcp\tport 1", "port 53 é", "x" * 1025):
        with pytest.raises(UnsafeArgument):
            validate_capture_filter(bad)
    hostile = "tcp and '$(id)' `x` ; rm -rf / #"
    assert sh_argv(["-f", validate_capture_filter(hostile)]) == ["-f", hostile]


def test_argv_must_be_a_list_of_text() -> None:
    for bad in ("ls -l", [], ["ls", b"-l"], ["ls", 3]):
        with pytest.raises(UnsafeArgument):
            shell_line(bad)  # type: ignore[arg-type]


def test_netns_and_signal_helpers_validate() -> None:
    assert in_netns("labyrinth.node-1", ["ip", "-j", "addr"])[:4] == [
        "ip",
        "netns",
        "exec",
        "labyrinth.node-1",
    ]
    with pytest.raises(UnsafeArgument):
        in_netns("../etc", ["id"])
    assert end_process_group(4242)[-2:] == ["4242", "30"]
    for pgid in (0, 1, -5, True, "12", "4242; id"):
        with pytest.raises(UnsafeArgument):
            end_process_group(pgid)  # type: ignore[arg-type]


def test_batch_script_loops_over_safe_netns_names_only(tmp_path: Path) -> None:
    """A fake `ip` lists hostile netns names; the node-side loop skips them and quotes the rest."""
    fake_ip = tmp_path / "ip"
    fake_ip.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2" = "netns list" ]; then\n'
        "  printf '%s\\n' 'pod-a (id: 0)' 'a;id (id: 1)' '$(id) (id: 2)' '-n (id: 3)' '.. (id: 4)' "
        "'no-id' 'pod.b (id: 5)'\n"
        "  exit 0\n"
        "fi\n"
        "printf '[%s]' \"$@\"; echo\n"
    )
    fake_ip.chmod(0o755)
    marker = "=TEST-MARKER="
    script = batch_script(
        marker,
        [
            Section("first", ("printf", "%s\\n", "one; two")),
            ForEachNetns((Section("addr", ("ip", "-n", NETNS, "-j", "addr")),)),
        ],
    )
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    out = subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, text=True, env=env, check=True)
    lines = out.stdout.splitlines()
    assert f"{marker} netns pod-a" in lines and f"{marker} netns pod.b" in lines
    assert [line for line in lines if line.startswith("[")] == [
        "[-n][pod-a][-j][addr]",
        "[-n][pod.b][-j][addr]",
    ]
    assert "one; two" in lines and f"{marker} end first 0" in lines
    assert not any("uid=" in line for line in lines)


def test_batch_script_commands_cannot_eat_the_script_from_stdin() -> None:
    marker = "=TEST-MARKER="
    script = batch_script(marker, [Section("reader", ("cat",)), Section("after", ("echo", "still here"))])
    out = subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, text=True, check=True).stdout
    assert "still here" in out and f"{marker} end after 0" in out


def test_netns_placeholder_outside_a_loop_is_refused() -> None:
    with pytest.raises(UnsafeArgument):
        batch_script("=TEST-MARKER=", [Section("bad", ("ip", "-n", NETNS, "addr"))])
    with pytest.raises(UnsafeArgument):
        batch_script("bad marker; id", [Section("ok", ("true",))])


def test_section_stdin_is_a_literal_here_document() -> None:
    marker = "=TEST-MARKER="
    text = "addr show\n$(id) `id` '\"\nroute show\n"
    script = batch_script(marker, [Section("cat", ("cat",), stdin=text), Section("after", ("echo", "ok"))])
    out = subprocess.run(["/bin/sh", "-s"], input=script, capture_output=True, text=True, check=True).stdout
    assert f"{marker} begin cat\n{text}\n{marker} end cat 0" in out and "ok" in out
    for bad in ("a\nLABYRINTH_STDIN\nid\n", "tab\there", "é"):
        with pytest.raises(UnsafeArgument):
            batch_script(marker, [Section("cat", ("cat",), stdin=bad)])


def test_end_process_group_kills_what_ignores_term_and_its_children() -> None:
    group = subprocess.Popen(
        ["sh", "-c", "trap '' TERM; sleep 600 & echo started; wait"],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert group.stdout is not None and group.stdout.readline() == b"started\n"
        ended = subprocess.run(["/bin/sh", "-c", shell_line(end_process_group(group.pid, 0.3))], check=False)
        assert ended.returncode == 0
        assert group.wait(timeout=5) == -9  # TERM was ignored: KILL ended it
        alive = subprocess.run(
            ["ps", "-e", "-o", "pgid=,stat="], capture_output=True, text=True
        ).stdout.split("\n")
        assert not [line for line in alive if line.split()[:1] == [str(group.pid)] and "Z" not in line]
    finally:
        if group.poll() is None:
            group.kill()
            group.wait()


@settings(max_examples=100, deadline=None)
@given(args=st.lists(ARG_TEXT, min_size=1, max_size=3))
def test_a_three_stage_pipeline_carries_every_argument_literally(args: list[str]) -> None:
    argv = pipeline(["printf", "%s\\0", *args], ["cat"], ["cat", "-"])
    out = subprocess.run(argv, capture_output=True, check=True).stdout
    assert [part.decode() for part in out.split(b"\0")[:-1]] == args


def test_a_pipeline_needs_two_commands() -> None:
    with pytest.raises(UnsafeArgument, match="at least two"):
        pipeline(["tshark"])
