"""Edge node config: the shipped sample validates; mistakes name the file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_node.config import load_edge_config, parse_edge_config
from factory_common.config import ConfigError

SAMPLE = Path(__file__).parents[2] / "edge_node" / "samples" / "edge.yaml"


def test_sample_config_is_valid() -> None:
    config = load_edge_config(SAMPLE)
    assert config.edge.id == "line1-edge"
    assert config.client_id == "edge-line1-edge"
    assert config.store.resolve_path(Path("/data")) == Path("/data/edge.sqlite")


def test_mistakes_are_reported_with_line_and_key_path() -> None:
    text = "edge:\n  id: 'bad id'\nmqtt:\n  port: 0\n  tls: {cert: c.pem}\nstor: {}\n"
    with pytest.raises(ConfigError) as caught:
        parse_edge_config(text, "edge.yaml")
    problems = caught.value.problems
    assert any(p.startswith("edge.yaml:2: edge.id:") and "invalid edge id" in p for p in problems)
    assert any(p.startswith("edge.yaml:4: mqtt.port:") for p in problems)
    assert any("mqtt.tls" in p and "both `cert` and `key`" in p for p in problems)
    assert any(p.startswith("edge.yaml:6: stor: unknown key") for p in problems)


def test_flush_interval_keeps_ingest_durable_within_a_second() -> None:
    with pytest.raises(ConfigError, match=r"store\.flush_interval"):
        parse_edge_config("edge: {id: e}\nstore: {flush_interval: 2}\n")
