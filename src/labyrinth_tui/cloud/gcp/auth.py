"""Where the project and the Application Default Credentials come from — found from files, no network."""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labyrinth_tui.cloud.gcp.errors import GcpCredentialsError

PROJECT_ENV = ("GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT", "GCLOUD_PROJECT")
# A test hook: the REST endpoint of a fake GCE. With it set, credentials are anonymous, so a real token
# is never sent anywhere but Google.
ENDPOINT_ENV = "LABYRINTH_GCE_ENDPOINT"
COMPUTE_SCOPE = "https://www.googleapis.com/auth/compute"
ADC_HELP = (
    "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
    "service-account key file"
)
PROJECT_HELP = "pass --project ID, set GOOGLE_CLOUD_PROJECT, or run `gcloud config set project ID`"


@dataclass(frozen=True, slots=True)
class Found:
    value: str
    source: str  # where it was found, for `doctor` and error messages


def gcloud_config_dir() -> Path:
    return Path(os.environ.get("CLOUDSDK_CONFIG") or Path.home() / ".config" / "gcloud")


def _gcloud_project() -> Found | None:
    """The project of gcloud's active configuration, read from its files (gcloud itself is not run)."""
    base = gcloud_config_dir()
    name = os.environ.get("CLOUDSDK_ACTIVE_CONFIG_NAME", "")
    if not name:
        try:
            name = (base / "active_config").read_text(encoding="utf-8").strip()
        except OSError:
            name = "default"
    path = base / "configurations" / f"config_{name or 'default'}"
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error:
        return None
    project = parser.get("core", "project", fallback="").strip()
    return Found(project, f"gcloud config {name!r} ({path})") if project else None


def find_project(explicit: str | None = None) -> Found | None:
    """The project from --project, then the environment, then gcloud's active configuration."""
    if explicit:
        return Found(explicit, "--project")
    for var in PROJECT_ENV:
        value = os.environ.get(var, "").strip()
        if value:
            return Found(value, f"${var}")
    return _gcloud_project()


def find_adc() -> Found | None:
    """The file ADC would load: $GOOGLE_APPLICATION_CREDENTIALS, else gcloud's application default file.

    On a GCE VM the metadata server may still provide credentials; finding that out needs the network,
    so it is left to `load_credentials`.
    """
    env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS", "")
    if env:
        return Found(env, "$GOOGLE_APPLICATION_CREDENTIALS") if Path(env).is_file() else None
    path = gcloud_config_dir() / "application_default_credentials.json"
    return Found(str(path), "gcloud application-default login") if path.is_file() else None


def resolve_project(explicit: str | None = None) -> str:
    found = find_project(explicit)
    if found is None:
        raise GcpCredentialsError(f"no GCP project: {PROJECT_HELP}")
    return found.value


def endpoint_override() -> str | None:
    return os.environ.get(ENDPOINT_ENV) or None


def load_credentials(endpoint: str | None) -> Any:
    """ADC for the real API; anonymous credentials for an overridden (test) endpoint."""
    if endpoint:
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()  # type: ignore[no-untyped-call]
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, _ = google.auth.default(scopes=[COMPUTE_SCOPE])
    except DefaultCredentialsError as e:
        raise GcpCredentialsError(f"no Application Default Credentials ({e}): {ADC_HELP}") from None
    return credentials
