"""A central cloud database for tests: the shipped schema and a small line's master data."""

from __future__ import annotations

from edge_node.cloud.config import CloudConfig
from edge_node.cloud.schema import apply_schema
from tests.support.mariadb import Database

GW = "gw1"


def cloud_config(db: Database, **overrides: object) -> CloudConfig:
    fields: dict[str, object] = {
        "host": db.host,
        "port": db.port,
        "user": db.user,
        "password": db.password or None,
        "database": db.name,
        "connect_timeout": 2.0,
        "query_timeout": 5.0,
    }
    return CloudConfig.model_validate(fields | overrides)


def create_central(db: Database, seed: bool = True) -> None:
    with db.connect() as conn:
        apply_schema(conn)
    if seed:
        seed_line(db)


def seed_line(db: Database) -> None:
    """Two tanks, three tags with units, two recipes, limits for two tags, two products."""
    statements = [
        "INSERT INTO equipment (id, name, line, kind) VALUES"
        " ('tank1', 'Anodizing tank 1', 'line1', 'tank'),"
        " ('tank2', 'Sealing tank', 'line1', 'tank')",
        f"INSERT INTO tags (gateway, device, tag, equipment_id, unit, description) VALUES"
        f" ('{GW}', 'tank1', 'temperature', 'tank1', 'degC', 'bath temperature'),"
        f" ('{GW}', 'tank1', 'current', 'tank1', 'A', 'rectifier current'),"
        f" ('{GW}', 'qc', 'colour', NULL, 'dE', 'colour difference')",
        "INSERT INTO recipes (id, name) VALUES ('R-black', 'Black 20um'), ('R-silver', 'Silver')",
        "INSERT INTO recipe_parameters (recipe_id, name, value, unit) VALUES"
        " ('R-black', 'current_density', 1.5, 'A/dm2'), ('R-black', 'time', 2400, 's'),"
        " ('R-silver', 'time', 1800, 's')",
        f"INSERT INTO control_limits (gateway, device, tag, lsl, usl, lcl, ucl, mean, sigma)"
        f" VALUES ('{GW}', 'tank1', 'temperature', 18, 24, 19.5, 22.5, 21, 0.5),"
        f" ('{GW}', 'qc', 'colour', NULL, 2.0, NULL, 1.5, 0.6, 0.3)",
        "INSERT INTO products (id, name, recipe_id) VALUES ('P-100', 'Panel', 'R-black'),"
        " ('P-200', 'Frame', 'R-silver')",
    ]
    for sql in statements:
        db.execute(sql)


def cloud_version(db: Database) -> int:
    return int(db.execute("SELECT v FROM md_version WHERE id = 1")[0][0])
