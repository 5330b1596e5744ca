"""The paper query benchmark compares like with like: on a tiny line, the central's answers
(both table designs) are the edge's answers, raw and downsampled, and the comparison the
benchmark relies on notices a difference. Not timed."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import pytest
from rich.console import Console

from tests.support.mariadb import Database

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import central_load  # noqa: E402
from answers import down_differences, edge_raw, raw_differences  # noqa: E402
from central_db import DESIGNS, Central  # noqa: E402
from central_query import queries  # noqa: E402
from edge_store import build_edge, line_day  # noqa: E402
from paper_query import edge_queries  # noqa: E402

from edge_node.store.model import HOUR_NS  # noqa: E402

POINTS = 50  # 144 s buckets, rounded up to whole minutes as for a day in 1,000 points


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Answers of the edge and of both central designs to the four queries."""
    from tests.support.mariadb import SHARED_HOST, SHARED_PORT, shared_server_or_skip

    shared_server_or_skip()
    tmp = tmp_path_factory.mktemp("paper")
    console = Console(quiet=True)
    t0, ts, values, names = line_day(2)  # the second hour stays in chunks, as a live line's
    span = (t0, t0 + 2 * HOUR_NS)
    db = Database(SHARED_HOST, SHARED_PORT, "root", "", f"t_paper_{tmp.name[-8:]}")
    central = Central(db.host, db.port, db.name.replace("-", "_"))
    central_load.load(central, (ts, values), 3, 0.1, tmp, console)
    store = build_edge(tmp / "edge.sqlite", ts, values, t0, console, live=120)
    out: dict[str, dict] = {"edge": {}}
    try:
        for name, query in edge_queries(store, list(names.values()), span, POINTS).items():
            result = query(store)
            out["edge"][name] = edge_raw(result) if name.startswith("raw") else result
        for design in DESIGNS:
            conn, asked = queries(central, design, names, span, POINTS)
            out[design] = {name: asked[name]() for name in out["edge"]}
            conn.close()
    finally:
        store.close()
        with central.connect(None) as conn, conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{central.database}`")
    return out


@pytest.mark.parametrize("design", list(DESIGNS))
def test_central_answers_are_the_edges(answers: dict[str, dict], design: str) -> None:
    edge, central = answers["edge"], answers[design]
    for name in ("raw 23", "raw 3"):
        assert len(edge[name]) == int(name.split()[1])
        assert sum(len(ts) for ts, _ in edge[name].values()) > 0
        assert raw_differences(edge[name], central[name]) == []
    for name in ("down 23", "down 3"):
        series = msgspec.json.decode(edge[name])
        assert [s["mode"] for s in series] == ["minmax"] * int(name.split()[1])
        assert len(series[0]["t"]) == 40  # 3-minute buckets over 2 h
        assert down_differences(edge[name], central[name]) == []


def test_the_comparison_notices_a_difference(answers: dict[str, dict]) -> None:
    edge, central = answers["edge"], answers["clustered"]
    name, (ts, values) = next(iter(central["raw 3"].items()))
    changed = values.copy()
    changed[len(changed) // 2] += 0.01
    assert raw_differences(edge["raw 3"], {**central["raw 3"], name: (ts, changed)})
    shifted = msgspec.json.decode(central["down 3"])
    shifted[0]["t"] = [t + 60_000 for t in shifted[0]["t"]]  # buckets a minute later
    assert down_differences(edge["down 3"], msgspec.json.encode(shifted))
    fewer = msgspec.json.decode(central["down 3"])
    fewer[1]["mean"] = fewer[1]["mean"][:-1]
    assert down_differences(edge["down 3"], msgspec.json.encode(fewer))
