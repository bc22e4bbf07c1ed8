"""labyrinth-tui: follow a packet's journey through Kubernetes networking, in a terminal."""

from __future__ import annotations

__version__ = "0.1.0"
