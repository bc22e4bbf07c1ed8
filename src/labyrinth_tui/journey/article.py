"""The article's journey: its two pods, its service and port, the payload it sent, the filter on every hop."""

from __future__ import annotations

CLIENT_POD, SERVER_POD = "node-wrk-1-ubuntu24", "node-wrk-2-ubuntu24"
CLIENT_NAMESPACE = "wrk-1"
SERVICE, PORT = "node-wrk-2-ubuntu24.wrk-2", 9999
HOP_FILTER = "udp port 53 or tcp port 9999 or udp port 8472"
PAYLOAD = "asdfasdfasdfasd\n"  # the article's
