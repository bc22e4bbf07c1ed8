"""ProvisionPane: provisioning steps per node with a bar, elapsed time and the current step's log line."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from labyrinth_tui.model.progress import Step, StepState

GLYPH = {
    StepState.PENDING: ("·", "dim"),
    StepState.RUNNING: ("◐", "bold yellow"),
    StepState.DONE: ("✓", "green"),
    StepState.FAILED: ("✗", "bold red"),
    StepState.SKIPPED: ("–", "dim"),
}
BAR_WIDTH = 12


def _bar(step: Step) -> Text:
    filled = round(step.fraction * BAR_WIDTH)
    style = "red" if step.state is StepState.FAILED else "green"
    return Text("█" * filled, style=style) + Text("░" * (BAR_WIDTH - filled), style="dim")


class ProvisionPane(Static):
    """The newest state of every step, in the order steps first appeared."""

    EMPTY = "[dim]Nothing provisioned yet. The lab reports its steps here as it comes up.[/dim]"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(self.EMPTY, id=id, classes="pane")
        self._steps: dict[tuple[str, str], Step] = {}
        self.border_title = "Provisioning"

    @property
    def steps(self) -> list[Step]:
        return list(self._steps.values())

    def update_step(self, step: Step) -> None:
        self._steps[step.key] = step
        self.set_class(any(s.state is StepState.FAILED for s in self._steps.values()), "-failed")
        self.set_class(
            all(s.state in (StepState.DONE, StepState.SKIPPED) for s in self._steps.values()), "-done"
        )
        self.update(self._render_steps())

    def _render_steps(self) -> Table:
        table = Table.grid(padding=(0, 1), expand=True)
        table.add_column(width=1)
        table.add_column(ratio=1, no_wrap=True)
        table.add_column(width=BAR_WIDTH)
        table.add_column(width=6, justify="right")
        for step in self._steps.values():
            glyph, style = GLYPH[step.state]
            label = Text(f"{step.group} · {step.name}")
            if step.log and step.state in (StepState.RUNNING, StepState.FAILED):
                label.append(f"  {step.log}", style="dim" if step.state is StepState.RUNNING else "red")
            table.add_row(Text(glyph, style=style), label, _bar(step), f"{step.elapsed:5.2f}s")
        return table
