"""Synthetic anodizing-line data for the edge benchmarks: 23 series of one equipment at 1 Hz.

Values are 2-decimal process values (bath temperatures, currents, voltages, ...) drifting
slowly with noise, timestamps 1 s apart with sub-millisecond jitter: what a gateway polling
Modbus registers produces. Deterministic for a given seed, so runs compare.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from factory_common.wire import WIRE_VERSION, Batch, Reading

SECOND = 10**9
TAGS = [
    f"{name}"
    for name in (
        "bath_temp", "bath_ph", "bath_conductivity", "rectifier_current", "rectifier_voltage",
        "agitation_flow", "chiller_temp", "rinse1_conductivity", "rinse2_conductivity",
        "seal_temp", "seal_ph", "dye_temp", "dye_ph", "dye_conc", "etch_temp", "etch_conc",
        "desmut_temp", "oven_temp", "humidity", "exhaust_flow", "tank_level", "line_speed",
        "colour_de",
    )
]  # fmt: skip
GATEWAY = "line1-gw"
DEVICE = "anodize1"


def columns(
    n_seconds: int, t0: int, n_series: int = 23, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """(ts int64 ns, values float64) both shaped (n_series, n_seconds)."""
    rng = np.random.default_rng(seed)
    base = np.arange(n_seconds, dtype=np.int64) * SECOND + t0
    jitter = rng.integers(-300_000, 300_000, size=(n_series, n_seconds))
    ts = base[None, :] + jitter
    level = rng.uniform(5, 500, size=(n_series, 1))
    drift = np.cumsum(rng.normal(0, 0.01, size=(n_series, n_seconds)), axis=1)
    noise = rng.normal(0, 0.05, size=(n_series, n_seconds))
    values = np.round(level + drift + noise, 2)
    return ts, values


def tag_names(n_series: int) -> list[str]:
    return [TAGS[i] if i < len(TAGS) else f"tag{i}" for i in range(n_series)]


def batches(
    ts: np.ndarray,
    values: np.ndarray,
    per_batch: int,
    *,
    gateway: str = GATEWAY,
    first_seq: int = 0,
) -> Iterator[Batch]:
    """Readings in time order (all series of a second together), cut into wire Batches."""
    n_series = ts.shape[0]
    tags = tag_names(n_series)
    flat_ts = ts.T.reshape(-1).tolist()
    flat_v = values.T.reshape(-1).tolist()
    total = len(flat_ts)
    for lo in range(0, total, per_batch):
        hi = min(lo + per_batch, total)
        readings = [
            Reading(device=DEVICE, tag=tags[i % n_series], ts=flat_ts[i], value=flat_v[i])
            for i in range(lo, hi)
        ]
        yield Batch(
            v=WIRE_VERSION,
            gateway=gateway,
            boot="bench",
            first_seq=first_seq + lo,
            last_seq=first_seq + hi - 1,
            readings=readings,
        )
