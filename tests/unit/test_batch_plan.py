"""Planning a batch of cards from a CSV: validation with line numbers, and re-runs."""

from __future__ import annotations

import pytest

from provisioning.batch_plan import BatchError, Existing, Row, Step, parse_csv, plan

CSV = """gateway_id,serial,site,line,labels
gw-01,SN1001,plant2,anodizing,zone=A;cabinet=3
gw-02,SN1002,plant2,anodizing,

gw-03,SN1003,plant2,packing,zone=B
"""


def test_rows_are_read_with_their_lines() -> None:
    rows = parse_csv(CSV)
    assert [r.gateway_id for r in rows] == ["gw-01", "gw-02", "gw-03"]
    assert rows[2].line == 5 and rows[2].production_line == "packing"
    assert rows[0].labels == (("cabinet", "3"), ("zone", "A"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("serial,site\nSN1,p\n", "gateways.csv:1: missing column 'gateway_id'"),
        ("gateway_id,colour\ngw-1,red\n", "unknown column 'colour'"),
        ("gateway_id\ngw-1\ngw-1\n", "gateways.csv:3: gw-1 already on line 2"),
        ("gateway_id\ngw/1\n", "gateways.csv:2: invalid gateway id"),
        ("gateway_id,labels\ngw-1,zone\n", "gateways.csv:2: labels: expected key=value"),
        ("gateway_id\n", "no gateways listed"),
    ],
)
def test_bad_csv_names_the_line(text: str, message: str) -> None:
    with pytest.raises(BatchError, match=message):
        parse_csv(text)


def test_a_new_gateway_needs_every_step() -> None:
    fresh = Existing(in_inventory=False, has_identity=False, card_digest=None, sheet_digest=None)
    assert plan(Row(2, "gw-1"), fresh, "c1", "s1") == [
        Step.INVENTORY,
        Step.IDENTITY,
        Step.CARD,
        Step.SHEET,
    ]


def test_a_rerun_skips_what_is_done_and_redoes_what_changed() -> None:
    done = Existing(in_inventory=True, has_identity=True, card_digest="c1", sheet_digest="s1")
    assert plan(Row(2, "gw-1"), done, "c1", "s1") == []
    assert plan(Row(2, "gw-1"), done, "c2", "s1") == [Step.CARD]
    assert plan(Row(2, "gw-1"), done, "c1", "s2") == [Step.SHEET]
