"""GcpCluster: plan, up, status and down of the article's GCP cluster, with progress as Steps.

The API is async; every blocking client call runs in this object's worker threads, never on the loop.
Progress callbacks are called on the event loop's thread, in the order things happen.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from labyrinth_tui.cloud.gcp.api import AlreadyExistsError, GceApi
from labyrinth_tui.cloud.gcp.auth import endpoint_override, load_credentials
from labyrinth_tui.cloud.gcp.errors import GcpError, GcpForeignResourceError, GcpProvisionError
from labyrinth_tui.cloud.gcp.plan import Action, Plan, Status, build_status, plan_down, plan_up
from labyrinth_tui.cloud.gcp.prices import PriceTable, estimate, load_prices
from labyrinth_tui.cloud.gcp.resources import Found, body_for, is_ours, relevant, ssh_keys_value, to_found
from labyrinth_tui.cloud.gcp.spec import CREATE_AFTER, DELETE_AFTER, ClusterSpec, Kind, NodeAccess, Ref
from labyrinth_tui.cloud.gcp.state import ClusterState, StateDir
from labyrinth_tui.model.progress import Step, StepState

ProgressFn = Callable[[Step], None]
T = TypeVar("T")
TOTAL = 2  # a create or delete: (1) the request is accepted, (2) its operation is done


class _Reporter:
    """Turns what happens to a resource into Steps; one start time per step key."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self._progress = progress
        self._started: dict[tuple[str, str], float] = {}

    def emit(self, ref: Ref | tuple[str, str], state: StepState, *, done: int = 0, log: str = "") -> None:
        key = ref.step_key if isinstance(ref, Ref) else ref
        start = self._started.setdefault(key, time.monotonic()) if state is not StepState.PENDING else None
        elapsed = 0.0 if start is None else time.monotonic() - start
        if self._progress is not None:
            self._progress(Step(key[0], key[1], state, done, TOTAL, elapsed, log))


class GcpCluster:
    """One cluster of one project. `async with` (or close()) releases its worker threads."""

    def __init__(
        self,
        spec: ClusterSpec,
        api: GceApi,
        *,
        state_dir: StateDir | None = None,
        prices: PriceTable | None = None,
        max_workers: int = 16,
    ) -> None:
        spec.validate()
        self.spec, self.api = spec, api
        self.state_dir = state_dir or StateDir(spec.cluster)
        self.prices = prices or load_prices()
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    @classmethod
    def connect(cls, spec: ClusterSpec, **api_options: Any) -> GcpCluster:
        """Real ADC credentials — or anonymous ones for $LABYRINTH_GCE_ENDPOINT (tests). May block: on a
        GCE VM, ADC asks the metadata server; from async code call it through asyncio.to_thread."""
        spec.validate()
        endpoint = api_options.pop("endpoint", None) or endpoint_override()
        credentials = api_options.pop("credentials", None) or load_credentials(endpoint)
        api = GceApi(
            spec.project, spec.region, spec.zone, credentials=credentials, endpoint=endpoint, **api_options
        )
        return cls(spec, api)

    async def __aenter__(self) -> GcpCluster:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        """A blocking client call, in a worker thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._max_workers, thread_name_prefix=f"gce-{self.spec.cluster}")
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    # -- reading what exists -----------------------------------------------------------------------
    async def inventory(self, kinds: tuple[Kind, ...] = tuple(Kind)) -> list[Found]:
        """Every resource that is ours or carries one of our names (one list call per kind, in parallel)."""
        listed = await asyncio.gather(*(self._io(self.api.list, kind) for kind in kinds))
        return [
            to_found(self.spec, kind, item)
            for kind, items in zip(kinds, listed, strict=True)
            for item in items
            if relevant(self.spec, kind, item)
        ]

    async def plan(self) -> Plan:
        return plan_up(self.spec, await self.inventory(), estimate(self.spec, self.prices))

    async def plan_down(self) -> Plan:
        return plan_down(self.spec, await self.inventory(), self.prices)

    async def status(self) -> Status:
        return build_status(self.spec, await self.inventory(), self.prices)

    # -- up ----------------------------------------------------------------------------------------
    async def up(self, progress: ProgressFn | None = None, *, plan: Plan | None = None) -> list[NodeAccess]:
        """Create what is missing, in parallel where the dependencies allow; return the nodes.

        Raises GcpForeignResourceError before touching anything when a name is taken by someone else,
        and GcpProvisionError (after everything else went through) when some creates failed.
        """
        self.spec.validate(for_up=True)
        plan = plan or await self.plan()
        if conflicts := [i for i in plan.items if i.action is Action.CONFLICT]:
            lines = "\n".join(f"  {i.ref.label}: {i.note}" for i in conflicts)
            raise GcpForeignResourceError(f"refusing to touch resources that are not ours:\n{lines}")
        public_key = await self._io(self.state_dir.ensure_key, self.spec.ssh_user)
        rep = _Reporter(progress)
        for item in plan.items:
            if item.action is Action.KEEP:
                rep.emit(item.ref, StepState.DONE, done=TOTAL, log=item.note)
            elif item.action in (Action.CREATE, Action.DELETE):
                rep.emit(item.ref, StepState.PENDING)
        creating = plan.refs(Action.CREATE)
        failures = await self._run_graph(creating, CREATE_AFTER, partial(self._create, rep, public_key), rep)
        failures |= await self._run_graph(plan.refs(Action.DELETE), {}, partial(self._delete, rep), rep)
        if failures:
            raise GcpProvisionError("up", failures)
        nodes = await self._nodes(rep, public_key)
        await self._io(self.state_dir.save, self._state(nodes))
        return nodes

    async def _create(self, rep: _Reporter, public_key: str, ref: Ref) -> str:
        request_id = str(uuid.uuid4())  # one per create, kept across its retries: GCE acts on it once
        rep.emit(ref, StepState.RUNNING, log="creating")
        body = body_for(self.spec, ref, public_key)
        try:
            op = await self._io(self.api.insert, ref, body, request_id)
        except AlreadyExistsError:
            return await self._adopt(ref)
        rep.emit(ref, StepState.RUNNING, done=1, log=f"waiting for {op.name}")
        await self._io(self.api.wait, op, f"create {ref.label}")
        return "created"

    async def _adopt(self, ref: Ref) -> str:
        """409: someone made it since the plan (often an earlier run whose answer was lost)."""
        existing = await self._io(self.api.get, ref)
        if existing is None:
            raise GcpError(f"create {ref.label}: 409 already exists, yet it cannot be read; re-run")
        if not is_ours(ref.kind, existing, self.spec.cluster):
            raise GcpForeignResourceError(
                f"{ref.label} already exists and was not made by labyrinth-tui for cluster "
                f"{self.spec.cluster!r}: refusing to adopt it (delete it, or pick another --cluster)"
            )
        return "adopted: it already existed, made by labyrinth-tui for this cluster"

    # -- down --------------------------------------------------------------------------------------
    async def down(self, progress: ProgressFn | None = None, *, plan: Plan | None = None) -> Plan:
        """Delete every resource of ours in dependency order, then check that nothing of ours is left."""
        plan = plan or await self.plan_down()
        rep = _Reporter(progress)
        deleting = plan.refs(Action.DELETE)
        for ref in deleting:
            rep.emit(ref, StepState.PENDING)
        failures = await self._run_graph(deleting, DELETE_AFTER, partial(self._delete, rep), rep)
        check = ("cluster", "nothing left")
        rep.emit(check, StepState.RUNNING, log="listing what is ours")
        left = [f.ref.label for f in await self.inventory() if f.ours]
        if left:
            rep.emit(check, StepState.FAILED, log=f"still there: {', '.join(left)}")
            failures |= {
                label: GcpError("still exists after down") for label in left if label not in failures
            }
        if failures:
            raise GcpProvisionError("down", failures)
        rep.emit(check, StepState.DONE, done=TOTAL, log=f"nothing of {self.spec.cluster!r} is left")
        await self._io(self.state_dir.remove)
        return plan

    async def _delete(self, rep: _Reporter, ref: Ref) -> str:
        rep.emit(ref, StepState.RUNNING, log="deleting")
        op = await self._io(self.api.delete, ref, str(uuid.uuid4()))
        if op is None:
            return "already gone"
        rep.emit(ref, StepState.RUNNING, done=1, log=f"waiting for {op.name}")
        await self._io(self.api.wait, op, f"delete {ref.label}")
        return "deleted"

    # -- shared ------------------------------------------------------------------------------------
    async def _run_graph(
        self,
        refs: list[Ref],
        after: dict[Kind, tuple[Kind, ...]],
        act: Callable[[Ref], Awaitable[str]],
        rep: _Reporter,
    ) -> dict[str, GcpError]:
        """Run act on every ref as soon as the refs it depends on are done; a failure skips its dependents."""
        failures: dict[str, GcpError] = {}
        tasks: dict[Ref, asyncio.Task[bool]] = {}

        async def run(ref: Ref) -> bool:
            for dep in [r for r in refs if r.kind in after.get(ref.kind, ())]:
                if not await tasks[dep]:
                    rep.emit(ref, StepState.SKIPPED, log=f"not attempted: {dep.label} did not finish")
                    return False
            try:
                log = await act(ref)
            except GcpError as e:
                failures[ref.label] = e
                rep.emit(ref, StepState.FAILED, log=str(e))
                return False
            rep.emit(ref, StepState.DONE, done=TOTAL, log=log)
            return True

        for ref in refs:
            tasks[ref] = asyncio.create_task(run(ref))
        results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result  # a bug, not a cloud failure: every other task has finished by now
        return failures

    async def _nodes(self, rep: _Reporter, public_key: str) -> list[NodeAccess]:
        instances = {f.ref.name: f for f in await self.inventory((Kind.INSTANCE,)) if f.ours}
        key = str(self.state_dir.key_path)
        nodes = []
        for name, internal_ip in self.spec.nodes:
            f = instances.get(name)
            if f is None:
                raise GcpError(f"{name} was created but is not listed: re-run `labyrinth gcp up`")
            if ssh_keys_value(self.spec, public_key) not in f.detail["ssh_keys"]:
                # adopted from a run whose key was lost: say so rather than fail later at SSH
                warning = f"WARNING: its ssh-keys metadata lacks this cluster's key {key}.pub"
                rep.emit(f.ref, StepState.DONE, done=TOTAL, log=warning)
            ip = f.detail.get("internal_ip") or internal_ip
            nodes.append(NodeAccess(name, ip, f.detail.get("external_ip", ""), self.spec.ssh_user, key))
        return nodes

    def _state(self, nodes: list[NodeAccess]) -> ClusterState:
        s = self.spec
        return ClusterState(
            s.cluster, s.project, s.region, s.zone, s.ssh_user, str(self.state_dir.key_path), nodes
        )
