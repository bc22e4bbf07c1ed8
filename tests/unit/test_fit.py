"""model.fit: names shortened in the middle keeping their suffix; fields giving way by rank."""

from __future__ import annotations

from labyrinth_tui.model.fit import Field, fit_fields, joined, shorten

POD = "wrk-1/node-wrk-1-ubuntu24-684f7d8fd6-2zncq"


def test_a_pod_name_keeps_its_hash_suffix() -> None:
    assert shorten("node-wrk-1-ubuntu24-684f7d8fd6-2zncq", 21) == "node-wrk-1-ubu…-2zncq"
    assert shorten(POD, 21) == "wrk-1/node-wrk…-2zncq"
    assert shorten(POD, len(POD)) == POD


def test_a_name_without_separators_keeps_head_and_tail() -> None:
    short = shorten("lxc1ba60d50596c", 10)
    assert len(short) == 10 and short.startswith("lxc1") and short.endswith("596c") and "…" in short


def test_shorten_never_exceeds_the_width() -> None:
    for width in range(0, len(POD) + 2):
        assert len(shorten(POD, width)) <= max(width, 0)


def test_fields_fit_whole_when_there_is_room() -> None:
    fields = [Field("◆", required=True), Field(POD, 0, 20, True), Field("10.0.1.15", 1)]
    assert joined(fit_fields(fields, 80)) == f"◆  {POD}  10.0.1.15"


def test_the_name_shrinks_before_the_address_goes() -> None:
    fields = [Field("◆", required=True), Field(POD, 0, 20, True), Field("10.0.1.15", 1)]
    texts = fit_fields(fields, 40)
    assert texts[2] == "10.0.1.15"
    assert texts[1] is not None and texts[1].endswith("-2zncq") and "…" in texts[1]
    assert len(joined(texts)) == 40


def test_the_address_goes_when_the_name_is_at_its_minimum() -> None:
    fields = [Field("◆", required=True), Field(POD, 0, 20, True), Field("10.0.1.15", 1)]
    texts = fit_fields(fields, 26)
    assert texts[2] is None
    assert texts[1] is not None and texts[1].endswith("-2zncq")
    assert len(joined(texts)) <= 26


def test_the_highest_rank_gives_way_first() -> None:
    fields = [Field("node-1", required=True), Field("10.168.0.4", 1), Field("unreachable: refused", 2)]
    assert fit_fields(fields, 20) == ["node-1", "10.168.0.4", None]


def test_required_fields_are_cut_as_a_last_resort() -> None:
    texts = fit_fields([Field("cilium_vxlan", required=True), Field("vni 2", 1)], 6)
    assert texts[1] is None and texts[0] is not None and len(texts[0]) == 6
