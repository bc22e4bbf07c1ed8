"""JourneyTargetScreen: `j` on a pod asks where its packet goes — a service or a pod, completed."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input, Label, RadioButton, RadioSet, Static

from labyrinth_tui.journey.plan import resolve_ends
from labyrinth_tui.journey.request import PROTOCOLS, JourneyRequest, RequestError, target_choices
from labyrinth_tui.model.topology import Topology

HINT = "enter follow · → complete · ctrl+o tcp/udp · esc cancel"


class JourneyTargetScreen(ModalScreen[JourneyRequest | None]):
    """The target of a journey from `client` (`NS/POD`): dismissed with the request, or None on escape.

    The target is checked against the topology before the modal closes (the same check the run makes),
    so a typo is one line here, not a failed run."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+o", "toggle_proto", "tcp/udp", priority=True),
    ]

    def __init__(self, topology: Topology, client: str) -> None:
        super().__init__()
        self.topology = topology
        self.client = client
        self.choices = target_choices(topology)
        self.proto = "tcp"  # kept here, not read back from the RadioSet: its Changed arrives a message later

    def compose(self) -> ComposeResult:
        with Vertical(id="target-body"):
            yield Label(f"Follow a packet from [b]{self.client}[/b] to", id="target-title")
            yield Input(
                placeholder="SERVICE.NAMESPACE:PORT or NAMESPACE/POD:PORT",
                suggester=SuggestFromList(self.choices),
                id="target-input",
            )
            with Horizontal(id="target-proto-row"):
                yield Label("proto", id="target-proto-label")
                with RadioSet(id="target-proto"):
                    for proto in PROTOCOLS:
                        yield RadioButton(proto, value=proto == "tcp", name=proto)
            yield Static("", id="target-error", markup=False)
            yield Static(HINT, id="target-hint", markup=False)

    def on_mount(self) -> None:
        self.query_one("#target-input", Input).focus()

    def action_toggle_proto(self) -> None:
        self.proto = next(p for p in PROTOCOLS if p != self.proto)
        for button in self.query(RadioButton):
            button.value = button.name == self.proto

    @on(RadioSet.Changed)
    def _proto_chosen(self, event: RadioSet.Changed) -> None:
        self.proto = event.pressed.name or "tcp"

    def action_cancel(self) -> None:
        self.dismiss(None)

    @on(Input.Submitted, "#target-input")
    def _submitted(self, event: Input.Submitted) -> None:
        try:
            request = JourneyRequest.parse(self.client, event.value.strip(), proto=self.proto)
            resolve_ends(self.topology, request)
        except RequestError as exc:
            self.say(str(exc).removeprefix("--to ").removeprefix("--from "))
            return
        self.dismiss(request)

    def say(self, why: str) -> None:
        """One line under the input: what is wrong with the target."""
        self.query_one("#target-error", Static).update(why)
