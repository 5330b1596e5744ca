"""Loading the factory's readings into both central designs: hour by hour in arrival order
(what a central receives), as tab-separated files through LOAD DATA, the next hour's file
written while the server loads this one."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pymysql
from central_db import DESIGNS, Central, create, table
from line_data import SECOND
from rich.console import Console
from rich.progress import Progress


def _hour_rows(
    hour: int, line: tuple[np.ndarray, np.ndarray], lines: int, rate: float, seed: int
) -> tuple[np.ndarray, ...]:
    """(equipment, parameter, ts ns, value) of one hour for the whole factory, in arrival
    order. Equipment 1 is the line (the edge's data); the others report every 1/rate s."""
    ts, values = line
    n_series = ts.shape[0]
    lo, hi = hour * 3600, (hour + 1) * 3600
    eq = [np.ones(n_series * (hi - lo), np.int32)]
    par = [np.repeat(np.arange(1, n_series + 1, dtype=np.int32), hi - lo)]
    tss = [ts[:, lo:hi].reshape(-1)]
    vals = [values[:, lo:hi].reshape(-1)]
    step = max(1, round(1 / rate))
    rng = np.random.default_rng(seed + hour)
    t_start = int(ts[0, lo]) - int(ts[0, lo]) % SECOND
    for equipment in range(2, lines + 1):
        per = len(range(0, 3600, step))
        grid = t_start + np.arange(0, 3600, step, dtype=np.int64) * SECOND
        phase = rng.integers(0, step * SECOND, size=(n_series, 1))
        eq.append(np.full(n_series * per, equipment, np.int32))
        par.append(np.repeat(np.arange(1, n_series + 1, dtype=np.int32), per))
        tss.append((grid[None, :] + phase).reshape(-1))
        vals.append(np.round(rng.uniform(5, 500, size=n_series * per), 2))
    all_ts = np.concatenate(tss)
    order = np.argsort(all_ts, kind="stable")
    return tuple(np.concatenate(c)[order] for c in (eq, par, [all_ts], vals))


def hour_tsv(eq: np.ndarray, par: np.ndarray, ts: np.ndarray, vals: np.ndarray, path: Path) -> None:
    """One hour of rows as tab-separated text for LOAD DATA (ts in ns, whole microseconds)."""
    stamps = np.char.replace(
        np.datetime_as_string(ts.astype("datetime64[ns]"), unit="us"), "T", " "
    )
    rows = zip(eq.tolist(), par.tolist(), stamps.tolist(), vals.tolist(), strict=True)
    text = "\n".join(f"{e}\t{q}\t{t}\t{v:.2f}" for e, q, t, v in rows)
    path.write_text(text + "\n")


def load_file(central: Central, path: Path) -> None:
    """Into both designs, each as one transaction. Server-side when the server is ours."""
    local = "" if central.server is not None else "LOCAL "
    with central.connect() as conn, conn.cursor() as cur:
        for design in DESIGNS:
            cur.execute(
                f"LOAD DATA {local}INFILE '{path}' INTO TABLE {table(design)}"
                " (equipment_id, parameter_id, ts, value)"
            )


def check_line(
    central: Central, start: int, count: int, total: float, designs: tuple[str, ...] = ()
) -> None:
    """LOAD DATA turns bad values into warnings: make sure the line arrived whole in both.
    `designs`: check only the count for the others (the arrival table's sum reads the whole
    table, minutes at full scale, where its index counts alone)."""
    since = str(np.datetime64(start, "ns").astype("datetime64[us]")).replace("T", " ")
    with central.connect() as conn, conn.cursor() as cur:
        for design in DESIGNS:
            summed = not designs or design in designs
            cur.execute(
                f"SELECT count(*), {'sum(value)' if summed else '%s'} FROM {table(design)}"
                " WHERE equipment_id = 1 AND ts >= %s",
                (*(() if summed else (total,)), since),
            )
            got, got_sum = cur.fetchone()
            if got != count or abs(float(got_sum or 0) - total) > 1e-6 * max(count, 1):
                raise SystemExit(
                    f"central {table(design)}: {got} rows of the line, {count} expected:"
                    " reload without --reuse-central"
                )


def load(
    central: Central,
    line: tuple[np.ndarray, np.ndarray],
    lines: int,
    rate: float,
    tmp: Path,
    console: Console,
) -> int:
    """Drop, create and fill both designs; returns rows per design."""
    create(central)
    hours = line[0].shape[1] // 3600
    # Server-side LOAD DATA reads the file itself; an existing server gets it sent (LOCAL).
    where = central.workdir / "load" if central.workdir is not None else tmp

    def write(hour: int) -> tuple[Path, int]:
        eq, par, ts, vals = _hour_rows(hour, line, lines, rate, seed=7)
        path = where / f"hour{hour:03d}.tsv"
        hour_tsv(eq, par, ts, vals, path)
        return path, len(eq)

    total = 0
    with ThreadPoolExecutor(1) as pool, Progress(console=console) as progress:
        task = progress.add_task(f"central: {lines} equipments, load by hour", total=hours)
        coming = pool.submit(write, 0)
        for hour in range(hours):
            path, rows = coming.result()
            if hour + 1 < hours:
                coming = pool.submit(write, hour + 1)
            load_file(central, path)
            path.unlink()
            total += rows
            progress.advance(task)
    ts, values = line
    check_line(central, int(ts.min()) - SECOND, ts.size, float(values.sum()))
    return total


def reusable(central: Central, line: tuple[np.ndarray, np.ndarray]) -> bool:
    """True when both designs already hold this line (an earlier run loaded them)."""
    ts, values = line
    try:
        check_line(central, int(ts.min()) - SECOND, ts.size, float(values.sum()), ("clustered",))
    except (pymysql.MySQLError, SystemExit):
        return False
    return True
