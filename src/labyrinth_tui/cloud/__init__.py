"""Real clusters: GCE VMs (gcp/), the Kubernetes API (kube/), Kubernetes + Cilium over SSH (bootstrap/).

Importing this package stays cheap: it holds only where the shipped node scripts, manifests and prices are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

ASSETS: Final = Path(__file__).resolve().parent / "assets"
