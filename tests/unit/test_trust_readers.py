"""Untrusted files: every defect one typed error (never a traceback), and no escape reaches the terminal."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labyrinth_tui.cloud.gcp.errors import GcpSpecError
from labyrinth_tui.cloud.gcp.spec import ClusterSpec
from labyrinth_tui.model.serialize import BundleFormatError
from labyrinth_tui.model.text import inert
from labyrinth_tui.sources.bundle import ARTICLE_BUNDLE, Bundle, read_packets

ESCAPES = "\x1b]0;pwned\x07\x1b[2J\x1b[H\x9b31m\x1bPq#0\x1b\\\x07\x08"
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def test_inert_strips_escapes_and_controls_keeps_text() -> None:
    assert inert(f"a{ESCAPES}b") == "ab"
    assert inert("line\tone\nline two", keep_lines=True) == "line\tone\nline two"
    assert inert("tab\there") == "tabhere"
    assert inert("ok → ü") == "ok → ü"


@settings(max_examples=2000, deadline=None)
@given(st.text())
def test_inert_output_never_holds_a_control_character(text: str) -> None:
    out = inert(text)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(json_values | st.binary(max_size=30), max_size=5))
def test_any_packets_file_reads_or_fails_with_one_typed_error(tmp_path: Path, lines: list[object]) -> None:
    path = tmp_path / "packets.jsonl"
    path.write_bytes(b"\n".join(v if isinstance(v, bytes) else json.dumps(v).encode() for v in lines))
    try:
        list(read_packets(path))
    except BundleFormatError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(json_values, json_values)
def test_any_bundle_json_loads_or_fails_with_one_typed_error(
    tmp_path: Path, meta: object, topo: object
) -> None:
    (tmp_path / "bundle.json").write_text(json.dumps(meta))
    (tmp_path / "topology.json").write_text(json.dumps(topo))
    try:
        Bundle.load(tmp_path)
    except BundleFormatError as exc:
        assert "\n" not in str(exc)


@pytest.mark.parametrize(
    "content, said",
    [
        (b"[" * 1000, "nested deeper than"),
        (b"[" * 200_000, "a line longer than"),
        (b"7\n", "expected a mapping, got a int"),
        (b"\xff\xfe{}\n", "not UTF-8"),
        (b"x" * (1 << 20), "a line longer than 64 kB"),
    ],
)
def test_crafted_packet_lines_are_one_clear_line(tmp_path: Path, content: bytes, said: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_bytes(content)
    with pytest.raises(BundleFormatError, match=said):
        list(read_packets(path))


def test_dev_zero_as_packets_fails_fast() -> None:
    with pytest.raises(BundleFormatError, match="a line longer than"):
        list(read_packets(Path("/dev/zero")))


def crafted_bundle(tmp_path: Path) -> Path:
    """The article's bundle with escapes in its title, node names and packet info."""
    out = tmp_path / "crafted"
    shutil.copytree(ARTICLE_BUNDLE, out)
    meta = json.loads((out / "bundle.json").read_text())
    meta["title"] = "title" + ESCAPES
    (out / "bundle.json").write_text(json.dumps(meta))
    for stream in meta["streams"]:
        path = out / stream["packets"]
        lines = []
        for line in path.read_text().splitlines():
            packet = json.loads(line)
            packet["info"] = packet["info"] + ESCAPES
            lines.append(json.dumps(packet))
        path.write_text("\n".join(lines) + "\n")
    return out


def test_a_crafted_bundle_prints_no_escape_through_journey_and_replay(tmp_path: Path) -> None:
    bundle = crafted_bundle(tmp_path)
    for args in (["journey", "--bundle", str(bundle)], ["replay", "--json", str(bundle)]):
        done = subprocess.run(
            [sys.executable, "-m", "labyrinth_tui", *args], capture_output=True, timeout=60, check=False
        )
        assert b"Traceback" not in done.stderr
        assert done.stdout, done.stderr
        assert not any(b in done.stdout for b in (b"\x1b", b"\x07", b"\x9b", b"\\u001b", b"\\u0007")), args


def test_a_bundle_pointing_outside_itself_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bundle.json").write_text(json.dumps({"format": 1, "topology": "../../etc/passwd"}))
    with pytest.raises(BundleFormatError, match="is not a file inside"):
        Bundle.load(tmp_path)


def test_gcp_plan_warns_on_ranges_covering_all_of_ipv4_and_refuses_odd_projects() -> None:
    split = ClusterSpec(project="p", ssh_source_ranges=("0.0.0.0/1", "128.0.0.0/1"))
    assert "WARNING" in split.broad_warning()
    assert ClusterSpec(project="p", ssh_source_ranges=("203.0.113.7/32",)).broad_warning() == ""
    with pytest.raises(GcpSpecError, match="project 'a/b'"):
        ClusterSpec(project="a/b").validate()
