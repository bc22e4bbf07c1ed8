"""The typed errors of GCP provisioning, each carrying the reason and what to do about it."""

from __future__ import annotations


class GcpError(Exception):
    """Anything that stops a plan, up, status or down; the message says why and what to do."""


class GcpSpecError(GcpError):
    """The cluster's description is invalid (a name, a zone, an address range)."""


class GcpCredentialsError(GcpError):
    """No Application Default Credentials, or no project to work in."""


class GcpForeignResourceError(GcpError):
    """A resource with one of our names exists but was not made by labyrinth-tui for this cluster."""


class GcpQuotaError(GcpError):
    """The project's quota does not allow the resource (e.g. CPUS in the region)."""


class GcpOperationError(GcpError):
    """A create or delete was accepted but its operation ended in an error."""


class GcpTimeoutError(GcpError):
    """An operation did not finish in time; it may still finish: re-running converges."""


class GcpProvisionError(GcpError):
    """Some resources of an up or down failed; the others went through. Re-running converges."""

    def __init__(self, verb: str, failures: dict[str, GcpError]) -> None:
        self.failures = failures
        lines = "\n".join(f"  {name}: {error}" for name, error in failures.items())
        super().__init__(
            f"{verb} did not finish: {len(failures)} resource(s) failed\n{lines}\n"
            f"Re-run `labyrinth gcp {verb}`: it converges (what exists and is ours is kept)."
        )
