"""The `cloud:` section of the edge config: the central MariaDB/MySQL and how often to sync."""

from __future__ import annotations

from pydantic import Field, SecretStr

from factory_common.config import StrictModel


class CloudConfig(StrictModel):
    host: str
    port: int = Field(default=3306, ge=1, le=65535)
    user: str = "edge"
    password: SecretStr | None = None  # repr is '**********': never logged
    database: str = "ees"
    # Every network call is bounded: connecting, and each query's read/write on the socket.
    connect_timeout: float = Field(default=5.0, gt=0, le=120)
    query_timeout: float = Field(default=30.0, gt=0, le=600)
    sync_down: bool = True
    sync_up: bool = True
    down_interval: float = Field(default=60.0, gt=0)  # seconds between master-data pulls
    up_interval: float = Field(default=60.0, gt=0)  # seconds between pushes
    # After a failure, retry after 2 s, doubling up to this many seconds.
    backoff_max: float = Field(default=300.0, gt=0)
    batch_size: int = Field(default=500, ge=1, le=50_000)  # rows per push transaction
    # Minute summaries are re-checked this far back, so readings a gateway delivers late
    # (after its own outage) still reach the cloud; the first push backfills this much.
    summaries_lookback: float = Field(default=86_400.0, ge=60)
    # A minute is pushed this many seconds after it ends (readings still in flight).
    summaries_settle: float = Field(default=10.0, ge=0)
