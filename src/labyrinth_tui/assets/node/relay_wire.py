"""The relay's wire: the pcap stream it reads, the markers it writes to the app, its exits.

Part of the capture relay that runs on a node (capture_relay.py; probes/capture_swap.py ships the parts).
"""

# It runs on the node's own python3, not in our environment: the standard library only, no annotations.
# mypy: ignore-errors
# ruff: noqa: UP031

import os
import struct
import sys

MARK = b"\x1elabyrinth\t"
ORDERS = {
    b"\xd4\xc3\xb2\xa1": "<",
    b"\x4d\x3c\xb2\xa1": "<",  # micro-, nanoseconds
    b"\xa1\xb2\xc3\xd4": ">",
    b"\xa1\xb2\x3c\x4d": ">",
}
MAX_RECORD = 16 + 262144


def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def die(message, code):
    sys.stderr.write("labyrinth relay: %s\n" % message)
    sys.exit(code)


def caplen_reader(header):
    """The unpacker of a record's captured length for the stream whose pcap header this is."""
    if header[:4] not in ORDERS:
        die("not a pcap stream on stdin", 2)
    return struct.Struct(ORDERS[header[:4]] + "I").unpack_from


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def marker(*words):
    return MARK + b"\t".join(b"%s" % w if isinstance(w, bytes) else b"%d" % w for w in words) + b"\n"


def emit(*words):
    write_all(1, marker(*words))


def status(code):
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N, as a shell says
