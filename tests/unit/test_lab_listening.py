"""How `lab up` knows sshd and dnsmasq listen: from the kernel's socket table, not by connecting to them."""

from __future__ import annotations

from pathlib import Path

from labyrinth_tui.lab.services import _proc_net_address, listening_tcp

# /proc/net/tcp as the kernel writes it: a listener on 10.168.0.4:22, one on *:53, an established
# connection to 10.168.0.4:22, then lines that do not parse
TABLE = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0400A80A:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 00000000:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0400A80A:0016 0500A80A:9C40 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: garbage
\x00\xff
"""


def test_addresses_read_as_the_kernel_prints_them() -> None:
    assert _proc_net_address("10.168.0.4") == "0400A80A"
    assert _proc_net_address("10.96.0.10") == "0A00600A"


def test_only_listening_sockets_and_bad_lines_skipped(tmp_path: Path) -> None:
    table = tmp_path / "tcp"
    table.write_bytes(TABLE.encode("latin-1"))
    assert listening_tcp(str(table)) == {"0400A80A:0016", "00000000:0035"}


def test_an_empty_table_lists_nothing(tmp_path: Path) -> None:
    table = tmp_path / "tcp"
    table.write_text("")
    assert listening_tcp(str(table)) == set()
