"""GceApi: the compute_v1 REST clients of one project, with retries that keep a create's request_id.

Every method blocks; callers run them in worker threads, never on an event loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labyrinth_tui.cloud.gcp.auth import ADC_HELP
from labyrinth_tui.cloud.gcp.errors import (
    GcpCredentialsError,
    GcpError,
    GcpOperationError,
    GcpQuotaError,
    GcpTimeoutError,
)
from labyrinth_tui.cloud.gcp.spec import Kind, Ref

QUOTA_HELP = (
    "ask for more quota (console: IAM & Admin → Quotas) or pick a smaller --machine-type or another --region"
)


RATE_LIMITED = {"rateLimitExceeded", "userRateLimitExceeded"}


class AlreadyExistsError(GcpError):
    """HTTP 409 on a create: something with that name is already there (ours or not: look)."""


class NotFoundError(GcpError):
    """HTTP 404."""


@dataclass(frozen=True, slots=True)
class _KindApi:
    client: str
    scope: str  # "global", "region" or "zone": the request field naming the location, if any
    name_field: str
    resource_field: str
    insert: str
    get: str
    delete: str
    list: str


_KINDS = {
    Kind.NETWORK: _KindApi(
        "NetworksClient", "global", "network", "network_resource",
        "InsertNetworkRequest", "GetNetworkRequest", "DeleteNetworkRequest", "ListNetworksRequest",
    ),
    Kind.SUBNET: _KindApi(
        "SubnetworksClient", "region", "subnetwork", "subnetwork_resource",
        "InsertSubnetworkRequest", "GetSubnetworkRequest", "DeleteSubnetworkRequest",
        "ListSubnetworksRequest",
    ),
    Kind.FIREWALL: _KindApi(
        "FirewallsClient", "global", "firewall", "firewall_resource",
        "InsertFirewallRequest", "GetFirewallRequest", "DeleteFirewallRequest", "ListFirewallsRequest",
    ),
    Kind.INSTANCE: _KindApi(
        "InstancesClient", "zone", "instance", "instance_resource",
        "InsertInstanceRequest", "GetInstanceRequest", "DeleteInstanceRequest", "ListInstancesRequest",
    ),
    Kind.DISK: _KindApi(
        "DisksClient", "zone", "disk", "disk_resource",
        "InsertDiskRequest", "GetDiskRequest", "DeleteDiskRequest", "ListDisksRequest",
    ),
}  # fmt: skip
_OPERATION_CLIENTS = ("GlobalOperationsClient", "RegionOperationsClient", "ZoneOperationsClient")


def _reasons(error: Any) -> set[str]:
    return {
        str(item.get("reason", ""))
        for item in (getattr(error, "errors", None) or [])
        if isinstance(item, dict)
    }


class GceApi:
    """One project, region and zone; REST transport; optional endpoint override (the test fake)."""

    def __init__(
        self,
        project: str,
        region: str,
        zone: str,
        *,
        credentials: Any = None,
        endpoint: str | None = None,
        call_timeout: float = 60.0,
        op_timeout: float = 900.0,
        retries: int = 5,
        backoff: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from google.api_core import exceptions as gexc
        from google.api_core.client_options import ClientOptions
        from google.cloud import compute_v1
        from requests import exceptions as rexc

        self.project, self.region, self.zone = project, region, zone
        self.call_timeout, self.op_timeout = call_timeout, op_timeout
        self.retries, self.backoff, self._sleep = retries, backoff, sleep
        self._compute, self._gexc, self._timeout = compute_v1, gexc, rexc.Timeout
        # worth another try with the same request_id: the server may or may not have acted on it
        self._transient: tuple[type[BaseException], ...] = (
            gexc.ServerError,
            gexc.TooManyRequests,
            rexc.ConnectionError,
            rexc.Timeout,
        )
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        names = {k.client for k in _KINDS.values()} | set(_OPERATION_CLIENTS)
        self._clients = {
            name: getattr(compute_v1, name)(credentials=credentials, transport="rest", client_options=options)
            for name in names
        }

    # -- plumbing ----------------------------------------------------------------------------------
    def _request(self, kind: Kind, verb: str, **fields: Any) -> tuple[Any, Any]:
        api = _KINDS[kind]
        location = {"region": {"region": self.region}, "zone": {"zone": self.zone}}.get(api.scope, {})
        request = getattr(self._compute, getattr(api, verb))(project=self.project, **location, **fields)
        return getattr(self._clients[api.client], verb if verb != "insert" else "insert_unary"), request

    def _classify(self, error: Any, what: str) -> GcpError:
        gexc = self._gexc
        message = getattr(error, "message", str(error))
        if isinstance(error, gexc.Conflict):
            return AlreadyExistsError(f"{what}: already exists")
        if isinstance(error, gexc.NotFound):
            return NotFoundError(f"{what}: not found ({message})")
        if _reasons(error) & {"quotaExceeded", "QUOTA_EXCEEDED"} or "quota" in message.lower():
            return GcpQuotaError(f"{what}: quota exceeded: {message} — {QUOTA_HELP}")
        if isinstance(error, gexc.Unauthorized | gexc.Forbidden):
            return GcpCredentialsError(
                f"{what}: {message} — the credentials lack permission: {ADC_HELP}; the account needs the "
                "Compute Admin role on the project"
            )
        return GcpError(f"{what}: HTTP {getattr(error, 'code', '?')}: {message}")

    def _call(self, method: Any, request: Any, what: str) -> Any:
        """One API call; transient failures are retried with the very same request (same request_id)."""
        for attempt in range(self.retries + 1):
            try:
                return method(request=request, timeout=self.call_timeout)
            except self._transient as e:  # before GoogleAPICallError: 5xx errors are API errors too
                last: BaseException = e
            except self._gexc.GoogleAPICallError as e:
                if not _reasons(e) & RATE_LIMITED:
                    raise self._classify(e, what) from None
                last = e
            if attempt == self.retries:
                raise GcpError(f"{what}: gave up after {attempt + 1} attempts: {last}") from None
            self._sleep(min(self.backoff * 2**attempt, 30.0))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- resources ---------------------------------------------------------------------------------
    def insert(self, ref: Ref, body: Any, request_id: str) -> Any:
        api = _KINDS[ref.kind]
        method, request = self._request(
            ref.kind, "insert", **{api.resource_field: body, "request_id": request_id}
        )
        return self._call(method, request, f"create {ref.label}")

    def get(self, ref: Ref) -> Any | None:
        method, request = self._request(ref.kind, "get", **{_KINDS[ref.kind].name_field: ref.name})
        try:
            return self._call(method, request, f"read {ref.label}")
        except NotFoundError:
            return None

    def list(self, kind: Kind) -> list[Any]:
        method, request = self._request(kind, "list")
        return list(self._call(method, request, f"list {kind}s"))

    def delete(self, ref: Ref, request_id: str) -> Any | None:
        """The delete's operation, or None when the resource is already gone."""
        api = _KINDS[ref.kind]
        method, request = self._request(
            ref.kind, "delete", **{api.name_field: ref.name, "request_id": request_id}
        )
        try:
            return self._call(method, request, f"delete {ref.label}")
        except NotFoundError:
            return None

    # -- operations --------------------------------------------------------------------------------
    def _operation_request(self, op: Any) -> tuple[Any, Any]:
        c = self._compute
        if op.zone:
            zone = op.zone.rsplit("/", 1)[-1]
            request = c.WaitZoneOperationRequest(project=self.project, zone=zone, operation=op.name)
            return self._clients["ZoneOperationsClient"].wait, request
        if op.region:
            region = op.region.rsplit("/", 1)[-1]
            request = c.WaitRegionOperationRequest(project=self.project, region=region, operation=op.name)
            return self._clients["RegionOperationsClient"].wait, request
        request = c.WaitGlobalOperationRequest(project=self.project, operation=op.name)
        return self._clients["GlobalOperationsClient"].wait, request

    def wait(self, op: Any, what: str) -> None:
        """Block until the operation is DONE (server-side waits until op_timeout); raise its error."""
        done = self._compute.Operation.Status.DONE
        deadline = time.monotonic() + self.op_timeout
        while op.status != done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GcpTimeoutError(
                    f"{what}: operation {op.name} still {op.status.name} after {self.op_timeout:g}s; "
                    "it may yet finish — re-run to converge"
                )
            method, request = self._operation_request(op)
            try:
                op = method(request=request, timeout=min(remaining, self.call_timeout))
            except self._transient as e:
                # a wait that timed out or hit a 5xx says nothing about the operation: ask again
                if not isinstance(e, self._timeout):
                    self._sleep(min(self.backoff, remaining))
            except self._gexc.GoogleAPICallError as e:
                raise self._classify(e, what) from None
        errors = list(op.error.errors)
        if errors:
            text = "; ".join(f"{e.code}: {e.message}" for e in errors)
            if any("QUOTA" in e.code for e in errors):
                raise GcpQuotaError(f"{what}: quota exceeded: {text} — {QUOTA_HELP}")
            raise GcpOperationError(f"{what}: the operation failed: {text}")
