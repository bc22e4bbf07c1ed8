"""Typed failures of the Kubernetes layer: each says what was asked, of which object, and why."""

from __future__ import annotations


class KubeError(Exception):
    """Something about the cluster's API went wrong; the message is for a person."""


class KubeConfigError(KubeError):
    """The kubeconfig is missing, unreadable, or has no such context."""


class ManifestError(KubeError):
    """A manifest does not parse, or is not something we know how to apply."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class NamespaceMissing(ManifestError):
    """A manifest names a namespace that the cluster does not have."""

    def __init__(self, source: str, namespace: str) -> None:
        super().__init__(
            source,
            f"namespace {namespace!r} does not exist (create it first: kubectl create namespace {namespace})",
        )
        self.namespace = namespace


class KubeUnreachable(KubeError):
    """No answer from the API server (refused, timed out, TLS failure)."""


class KubeApiError(KubeError):
    """The API server answered with an error status."""

    def __init__(self, what: str, status: int, reason: str) -> None:
        super().__init__(f"{what}: HTTP {status} {reason}".rstrip())
        self.what = what
        self.status = status
        self.reason = reason


class KubeTimeout(KubeError):
    """Waited for a state (pods Running, a rollout) longer than allowed; says what was last seen."""


class ExecFailed(KubeError):
    """A command run in a pod (kubectl exec's twin) failed or did not do what was expected."""


class ExecForbidden(ExecFailed):
    """RBAC refused the exec: the message names the verb, the resource and the namespace to grant."""
