"""Apply deploy/cloud/central_schema.sql from Python (tests, `edge-node` tooling)."""

from __future__ import annotations

from pathlib import Path

import pymysql

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "deploy" / "cloud" / "central_schema.sql"


def statements(sql: str) -> list[str]:
    """Split a mysql-client script into statements, honouring `DELIMITER` lines (triggers)."""
    out: list[str] = []
    delimiter = ";"
    buffer: list[str] = []
    for line in sql.splitlines():
        stripped = line.strip()
        if stripped.upper().startswith("DELIMITER "):
            delimiter = stripped.split(None, 1)[1]
            continue
        if not buffer and (not stripped or stripped.startswith("--")):
            continue
        buffer.append(line)
        if stripped.endswith(delimiter):
            text = "\n".join(buffer).rstrip()
            out.append(text[: -len(delimiter)].strip())
            buffer = []
    if "".join(buffer).strip():
        out.append("\n".join(buffer).strip())
    return [s for s in out if s]


def apply_schema(conn: pymysql.Connection, path: Path = SCHEMA_FILE) -> int:
    """Run every statement of the schema file (idempotent: IF NOT EXISTS); returns how many."""
    parts = statements(path.read_text())
    with conn.cursor() as cur:
        for statement in parts:
            cur.execute(statement)
    conn.commit()
    return len(parts)
