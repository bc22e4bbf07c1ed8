"""Real clusters in the cloud: GCP provisioning (gcp*.py); importing this package stays cheap."""

from __future__ import annotations
