"""The dated hourly price table and the cost of a cluster: estimated before `up`, accrued in `status`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from labyrinth_tui.cloud.gcp.errors import GcpError
from labyrinth_tui.cloud.gcp.spec import ClusterSpec
from labyrinth_tui.cloud.gcp.state import config_root

OVERRIDE_NAME = "prices.json"
STALE_AFTER_DAYS = 180


@dataclass(frozen=True, slots=True)
class PriceTable:
    as_of: date
    currency: str
    hours_per_month: float
    source: tuple[str, ...]
    note: str
    regions: dict[str, dict[str, Any]]
    origin: str  # the file it was read from

    def _region(self, region: str) -> dict[str, Any]:
        return self.regions.get(region, {})

    def machine_hourly(self, region: str, machine_type: str) -> float | None:
        value = self._region(region).get("machine_hourly", {}).get(machine_type)
        return None if value is None else float(value)

    def disk_hourly(self, region: str, disk_type: str, size_gb: int) -> float | None:
        per_gb_month = self._region(region).get("disk_gb_monthly", {}).get(disk_type)
        return None if per_gb_month is None else float(per_gb_month) * size_gb / self.hours_per_month

    def ip_hourly(self, region: str) -> float | None:
        value = self._region(region).get("external_ipv4_hourly")
        return None if value is None else float(value)

    def age_days(self, today: date | None = None) -> int:
        return ((today or date.today()) - self.as_of).days

    def dated(self, today: date | None = None) -> str:
        """ "prices as of 2026-11-26 (USD, on-demand list)", with a warning when the table is old."""
        text = f"prices as of {self.as_of.isoformat()} ({self.currency}, on-demand list; {self.origin})"
        if self.age_days(today) > STALE_AFTER_DAYS:
            text += f" — {self.age_days(today)} days old: check {self.source[0] if self.source else 'them'}"
        return text


def _parse(data: dict[str, Any], origin: str) -> PriceTable:
    try:
        return PriceTable(
            as_of=date.fromisoformat(data["as_of"]),
            currency=str(data.get("currency", "USD")),
            hours_per_month=float(data.get("hours_per_month", 730)),
            source=tuple(data.get("source", ())),
            note=str(data.get("note", "")),
            regions=dict(data["regions"]),
            origin=origin,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise GcpError(f"price table {origin} is malformed ({e!r}): it needs as_of and regions") from None


def load_prices(root: Path | None = None) -> PriceTable:
    """<config dir>/gcp/prices.json when present, else the table shipped with the package."""
    override = (root or config_root()) / "gcp" / OVERRIDE_NAME
    if override.is_file():
        try:
            return _parse(json.loads(override.read_text(encoding="utf-8")), str(override))
        except ValueError as e:
            raise GcpError(f"price table {override} is not JSON ({e})") from None
    shipped = resources.files("labyrinth_tui.cloud") / "assets" / "gcp_prices.json"
    return _parse(json.loads(shipped.read_text(encoding="utf-8")), "shipped table")


@dataclass(frozen=True, slots=True)
class CostLine:
    what: str
    count: int
    unit_hourly: float | None  # None: not in the table

    @property
    def hourly(self) -> float:
        return (self.unit_hourly or 0.0) * self.count


@dataclass(frozen=True, slots=True)
class Estimate:
    lines: tuple[CostLine, ...]
    dated: str
    hours_per_month: float

    @property
    def hourly(self) -> float:
        return sum(line.hourly for line in self.lines)

    @property
    def monthly(self) -> float:
        return self.hourly * self.hours_per_month

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(line.what for line in self.lines if line.unit_hourly is None)


def estimate(spec: ClusterSpec, prices: PriceTable, *, today: date | None = None) -> Estimate:
    """What the whole cluster costs per hour while it exists (networks and firewall rules are free)."""
    n = len(spec.nodes)
    return Estimate(
        lines=(
            CostLine(
                f"{spec.machine_type} in {spec.region}",
                n,
                prices.machine_hourly(spec.region, spec.machine_type),
            ),
            CostLine(
                f"{spec.disk_size_gb} GB {spec.disk_type} boot disk",
                n,
                prices.disk_hourly(spec.region, spec.disk_type, spec.disk_size_gb),
            ),
            CostLine("external IPv4 address", n, prices.ip_hourly(spec.region)),
            CostLine("network, subnet, firewall rules", 1, 0.0),
        ),
        dated=prices.dated(today),
        hours_per_month=prices.hours_per_month,
    )
