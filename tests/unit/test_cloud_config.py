"""The cloud: section: optional, documented in the sample, secrets hidden, bad values located."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_node.cloud.rows import parse_time, upsert_sql
from edge_node.cloud.schema import SCHEMA_FILE, statements
from edge_node.config import parse_edge_config
from factory_common.config import ConfigError

SAMPLE = Path(__file__).resolve().parents[2] / "edge_node" / "samples" / "edge.yaml"


def test_sample_cloud_block_uncommented_is_valid() -> None:
    text = SAMPLE.read_text()
    block = re.search(r"^# cloud:\n((?:#   .*\n)+)", text, re.MULTILINE)
    assert block is not None, "the sample documents the cloud section"
    uncommented = "cloud:\n" + re.sub(r"^# ", "", block.group(1), flags=re.MULTILINE)
    config = parse_edge_config(text + uncommented)
    assert config.cloud is not None and config.cloud.database == "ees"
    assert config.cloud.down_interval == 60.0 and config.cloud.batch_size == 500


def test_cloud_is_optional_and_its_password_never_shows() -> None:
    assert parse_edge_config("edge: {id: e1}\n").cloud is None
    config = parse_edge_config("edge: {id: e1}\ncloud: {host: db, password: s3cret}\n")
    assert "s3cret" not in repr(config) and "s3cret" not in str(config.cloud)
    assert config.cloud.password.get_secret_value() == "s3cret"


def test_bad_cloud_values_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"cloud\.batch_size"):
        parse_edge_config("edge: {id: e1}\ncloud: {host: db, batch_size: 0}\n")
    with pytest.raises(ConfigError, match=r"cloud\.host"):
        parse_edge_config("edge: {id: e1}\ncloud: {port: 3306}\n")


def test_schema_file_splits_into_tables_and_triggers() -> None:
    parts = statements(SCHEMA_FILE.read_text())
    triggers = [p for p in parts if p.startswith("CREATE TRIGGER")]
    assert len(triggers) == 18  # 6 master-data tables x (insert, update, delete)
    assert all(p.rstrip().endswith("END") for p in triggers)
    assert sum(p.startswith("CREATE TABLE") for p in parts) == 12


def test_upserts_update_every_non_key_column() -> None:
    sql = upsert_sql("defects")
    assert sql.startswith("INSERT INTO defects (edge_id, defect_key, ts,")
    assert "ON DUPLICATE KEY UPDATE ts = VALUES(ts)" in sql and "edge_id = VALUES" not in sql


def test_payload_times_in_any_unit() -> None:
    expected = "2025-11-24 16:00:00"
    for value in (1_764_000_000, 1_764_000_000_000, 1_764_000_000_000_000_000,
                  "2025-11-24T16:00:00Z", "2025-11-24T17:00:00+01:00"):  # fmt: skip
        assert str(parse_time(value)) == expected, value
    assert parse_time(None) is None
    with pytest.raises(ValueError, match="epoch ms or ISO 8601"):
        parse_time([1])
