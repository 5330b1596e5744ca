"""Benchmark (not a test): edge ingest from MQTT batches into the store, against a naive sink.

    .venv/bin/python bench/ingest.py [--readings 2000000] [--baseline-readings 300000]
                                     [--tiny] [--no-record]

A private Mosquitto on a free loopback port; the real edge node (`edge-node run --role
ingest`, its own process pinned to one CPU core) subscribed with its usual settings (group
commits every 0.2 s or 16 messages, synchronous=FULL, PUBACK after commit); a publisher here
sends line-day data (bench/line_data.py: 23 series at 1 Hz, timestamps in the past, so
compaction packs every hour as soon as it is done) as 1,000-reading wire batches, QoS 1.

Measured: readings/s from the first publish until the last reading is committed; the age of
each batch when its commit became visible (polled every 0.1 s: durable within 1 s?); bytes
written to disk per reading by the edge process (/proc/<pid>/io write_bytes: WAL, checkpoints
and compaction, read after the process exits, before it is reaped); bytes stored per reading
(compressed blocks, and the file after VACUUM); a lossless check of every reading. The same
run feeds a naive baseline: one SQLite row per reading with a (device, tag, ts) index, one
commit per MQTT message, also pinned to one core. Results go to docs/benchmarks.md, "## Edge".
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import numpy as np  # noqa: E402
import paho.mqtt.client as mqtt  # noqa: E402
from bench_report import machine, now, record_section  # noqa: E402
from line_data import GATEWAY, SECOND, batches, columns, tag_names  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402

from edge_node.store import Store  # noqa: E402
from factory_common.wire import data_topic, encode  # noqa: E402
from tests.support.broker import Mosquitto  # noqa: E402
from tests.support.ports import free_port  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 160)
EDGE_CORE = (os.cpu_count() or 1) - 1  # the publisher and broker use the other core(s)


def pin(core: int) -> None:
    os.sched_setaffinity(0, {core})


def write_bytes_at_exit(process: subprocess.Popen[bytes], timeout: float = 30) -> int:
    """The process's write_bytes once it has exited: waited for without reaping it, so
    /proc/<pid>/io still holds its totals (final checkpoint included)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        if info is not None:
            break
        time.sleep(0.05)
    else:
        process.kill()
        raise SystemExit(f"pid {process.pid} did not exit within {timeout}s")
    fields = dict(
        line.split(": ") for line in Path(f"/proc/{process.pid}/io").read_text().splitlines()
    )
    process.wait()
    return int(fields["write_bytes"])


class Publisher:
    """Publishes pre-encoded batches with QoS 1 and remembers when each one went out."""

    def __init__(self, port: int, client_id: str) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(
        self, payloads: list[bytes], sizes: list[int], rate: float | None = None
    ) -> list[float]:
        """Flat out, or paced at `rate` readings/s; returns each publish's time."""
        sent = []
        infos = []
        start = time.monotonic()
        due = np.cumsum([0, *sizes[:-1]]) / rate if rate else None
        for i, payload in enumerate(payloads):
            if due is not None:
                time.sleep(max(0.0, start + due[i] - time.monotonic()))
            sent.append(time.monotonic())
            infos.append(self.client.publish(data_topic(GATEWAY), payload, qos=1))
        for info in infos:
            info.wait_for_publish(60)
        return sent

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def follow(count: callable, total: int, label: str, timeout: float) -> list[tuple[float, int]]:
    """Poll a stored-readings counter every 0.1 s until it reaches `total`."""
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        while time.monotonic() < deadline:
            stored = count()
            samples.append((time.monotonic(), stored))
            progress.update(task, completed=stored)
            if stored >= total:
                return samples
            time.sleep(0.1)
    raise SystemExit(f"{label}: only {samples[-1][1]} of {total} readings after {timeout}s")


def ages(sent: list[float], sizes: list[int], samples: list[tuple[float, int]]) -> np.ndarray:
    """Seconds from each batch's publish until a poll first saw it committed."""
    times = np.array([t for t, _ in samples])
    counts = np.array([c for _, c in samples])
    cumulative = np.cumsum(sizes)
    first = np.searchsorted(counts, cumulative, side="left")
    return times[np.minimum(first, len(times) - 1)] - np.array(sent)


# ---------------------------------------------------------------------------------- edge


def edge_config(broker: int, http: int) -> str:
    return (
        "edge: {id: bench-edge}\n"
        f"mqtt: {{host: 127.0.0.1, port: {broker}, client_id: edge-bench}}\n"
        "store: {path: edge.sqlite, flush_interval: 0.2, flush_messages: 16,"
        " compact_interval: 1.0, compact_grace: 0}\n"
        f"http: {{host: 127.0.0.1, port: {http}}}\n"
        "auth: {enabled: false}\n"
    )


def run_edge(broker: Mosquitto, load: dict, work: Path) -> dict:
    """load: payloads/sizes (flat out), paced_payloads/paced_sizes at load["rate"]."""
    payloads, sizes = load["payloads"], load["sizes"]
    http = free_port()
    (work / "edge.yaml").write_text(edge_config(broker.port, http))
    data = work / "edge"
    log = (work / "edge.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_node.cli", "run", str(work / "edge.yaml"),
         "--data-dir", str(data), "--role", "ingest", "--json-logs"],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: pin(EDGE_CORE),
    )  # fmt: skip
    api = f"http://127.0.0.1:{http}/api"
    try:
        wait_for(lambda: httpx.get(f"{api}/health", timeout=1).json()["mqtt_connected"], 30)
        before = _io(process.pid)
        publisher = Publisher(broker.port, "bench-publisher")
        sent = publisher.publish(payloads, sizes)

        def stored() -> int:
            return httpx.get(f"{api}/stats", timeout=5).json()["ingest"]["readings_stored"]

        samples = follow(stored, sum(sizes), "edge ingest", timeout=600)
        ingest_bytes = _io(process.pid) - before
        paced_ages, paced_rate = run_paced(publisher, load, stored)
        publisher.close()
        total = sum(sizes) + sum(load["paced_sizes"])

        def packed() -> int:
            return total - httpx.get(f"{api}/stats", timeout=5).json()["store"]["recent_rows"]

        follow(packed, total, "edge compaction", timeout=600)
    finally:
        process.send_signal(15)
        total_bytes = write_bytes_at_exit(process) - before
        log.close()
    elapsed = samples[-1][0] - sent[0]
    return {
        "rate": sum(sizes) / elapsed,
        "readings": total,
        "ages": ages(sent, sizes, samples),
        "paced_ages": paced_ages,
        "paced_rate": paced_rate,
        "ingest_bytes": ingest_bytes,
        "total_bytes": total_bytes,
        "store": data / "edge.sqlite",
    }


def run_paced(publisher: Publisher, load: dict, stored: callable) -> tuple[np.ndarray, float]:
    """Publish at the goal's rate while polling the stored count every 0.05 s: the age of
    each batch when its commit became visible, i.e. the time to durability."""
    base = stored()
    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            samples.append((time.monotonic(), stored() - base))
            time.sleep(0.05)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    sent = publisher.publish(load["paced_payloads"], load["paced_sizes"], load["rate"])
    deadline = time.monotonic() + 120
    while (
        not samples or samples[-1][1] < sum(load["paced_sizes"])
    ) and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    poller.join()
    achieved = sum(load["paced_sizes"][:-1]) / (sent[-1] - sent[0])
    return ages(sent, load["paced_sizes"], samples), achieved


def _io(pid: int) -> int:
    text = Path(f"/proc/{pid}/io").read_text()
    return int(dict(line.split(": ") for line in text.splitlines())["write_bytes"])


def wait_for(check: callable, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"the edge did not come up within {timeout}s")


def stored_figures(path: Path, sets: list[tuple[np.ndarray, np.ndarray]], work: Path) -> dict:
    """Bytes stored per reading, and whether every reading of every set came back exactly."""
    store = Store(path, read_only=True)
    lossless = True
    try:
        infos = store.series()
        conn = store._reader()
        blob, packed = conn.execute("SELECT sum(length(data)), sum(n) FROM blocks").fetchone()
        vacuumed = work / "vacuumed.sqlite"
        plain = sqlite3.connect(path)  # the store's readers are query_only
        plain.execute("VACUUM INTO ?", (str(vacuumed),))
        plain.close()
        for ts, values in sets:
            data = {d.series.tag: d for d in store.history(infos, int(ts.min()), int(ts.max()) + 1)}
            lossless &= all(
                np.array_equal(data[tag].ts, np.sort(ts[i]))
                and np.array_equal(data[tag].values, values[i][np.argsort(ts[i], kind="stable")])
                for i, tag in enumerate(tag_names(ts.shape[0]))
            )
    finally:
        store.close()
    total = sum(ts.size for ts, _ in sets)
    return {"blob": blob / packed, "file": vacuumed.stat().st_size / total, "lossless": lossless}


# ------------------------------------------------------------------------------ baseline

NAIVE_DDL = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY, gateway TEXT, device TEXT, tag TEXT,
    ts INTEGER, value REAL, quality TEXT
);
CREATE INDEX IF NOT EXISTS readings_tag_ts ON readings (device, tag, ts);
"""


def naive_sink(port: int, path: str) -> None:
    """The baseline: a row per reading, one transaction per MQTT message (then paho acks)."""
    from factory_common.wire import Batch, decode

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.executescript(NAIVE_DDL)

    def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        batch = decode(message.payload, Batch)
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO readings (gateway, device, tag, ts, value, quality)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            [
                (batch.gateway, r.device, r.tag, r.ts, r.value, r.quality.value)
                for r in batch.readings
            ],
        )
        conn.execute("COMMIT")

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="naive-sink", clean_session=False)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(data_topic(GATEWAY), qos=1)
    client.connect("127.0.0.1", port)
    client.loop_forever()


def run_naive(broker: Mosquitto, payloads: list[bytes], sizes: list[int], work: Path) -> dict:
    path = work / "naive.sqlite"
    log = (work / "naive.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, __file__, "--naive-sink", str(broker.port), str(path)],
        stdout=log, stderr=subprocess.STDOUT, preexec_fn=lambda: pin(EDGE_CORE),
    )  # fmt: skip
    try:
        wait_for(lambda: path.exists() and _count(path) == 0, 30)
        time.sleep(1.0)  # subscribed
        before = _io(process.pid)
        publisher = Publisher(broker.port, "bench-publisher-naive")
        sent = publisher.publish(payloads, sizes)
        publisher.close()
        samples = follow(lambda: _count(path), sum(sizes), "naive baseline", timeout=900)
    finally:
        process.send_signal(15)
        total_bytes = write_bytes_at_exit(process) - before
        log.close()
    plain = sqlite3.connect(path)
    plain.execute("VACUUM INTO ?", (str(work / "naive-vacuumed.sqlite"),))
    plain.close()
    return {
        "rate": sum(sizes) / (samples[-1][0] - sent[0]),
        "ages": ages(sent, sizes, samples),
        "total_bytes": total_bytes,
        "file": (work / "naive-vacuumed.sqlite").stat().st_size,
    }


def _count(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT coalesce(max(id), 0) FROM readings").fetchone()[0]
    except sqlite3.OperationalError:
        return -1  # table not created yet
    finally:
        conn.close()


# -------------------------------------------------------------------------------- report


def markdown(setup: dict, edge: dict, naive: dict, stored: dict) -> str:
    def age(ages: np.ndarray) -> str:
        a = ages * 1000
        return f"{np.percentile(a, 50):,.0f} / {np.percentile(a, 99):,.0f} / {a.max():,.0f} ms"

    n, m, total = setup["readings"], setup["baseline_readings"], edge["readings"]
    rows = [
        "| sink | readings | readings/s | publish -> committed p50 / p99 / max |"
        " bytes written per reading | bytes stored per reading | lossless |",
        "|---|---:|---:|---|---|---|---|",
        f"| edge (`edge-node run --role ingest`), flat out | {n:,} | {edge['rate']:,.0f} |"
        f" {age(edge['ages'])} (a backlog: all published at once) |"
        f" {edge['ingest_bytes'] / n:,.1f} while ingesting |"
        f" {stored['blob']:.2f} in blocks |"
        f" {'yes' if stored['lossless'] else 'NO'} |",
        f"| edge, paced at {setup['paced_rate']:,.0f}/s | {setup['paced_readings']:,} |"
        f" {edge['paced_rate']:,.0f} | {age(edge['paced_ages'])} |"
        f" {edge['total_bytes'] / total:,.1f} for both runs, with compaction and exit |"
        f" {stored['file']:.2f} whole file (VACUUM; all tiers) | (both runs) |",
        f"| naive: row per reading, commit per message, flat out | {m:,} | {naive['rate']:,.0f} |"
        f" {age(naive['ages'])} | {naive['total_bytes'] / m:,.1f} |"
        f" {naive['file'] / m:,.1f} whole file (VACUUM) | - |",
    ]
    return f"""### Ingest from MQTT (`bench/ingest.py`), {setup["date"]}

Machine: {setup["machine"]}. Private Mosquitto on loopback; each sink in its own process
pinned to CPU {EDGE_CORE} (one core), publisher and broker on the other(s). Line data (23
series, 2-decimal values) in 1,000-reading QoS 1 batches, timestamps in the past so compaction
packs every hour right away (compaction, checkpoints and the final checkpoint at exit are in
the bytes). Edge settings: group commit every 0.2 s or 16 messages, synchronous=FULL, PUBACK
after commit. Flat out, everything is published at once, so the age of a batch is mostly its
wait in the broker's queue; paced, the age is the time to durability (polled every 0.05 s).
Goals: >= 100,000 readings/s, durable within 1 s, <= 200 bytes written and <= 4 bytes stored
per reading, lossless.

{chr(10).join(rows)}

The naive sink keeps up at ingest (it does no exactly-once bookkeeping, no latest values and
no rollups, all of which the edge does per reading in Python); what it costs is in the bytes
written and stored, and in answering the paper's query (above).
"""


def encoded(ts: np.ndarray, values: np.ndarray, first_seq: int) -> tuple[list[bytes], list[int]]:
    payloads, sizes = [], []
    for batch in batches(ts, values, 1000, first_seq=first_seq):
        payloads.append(encode(batch))
        sizes.append(len(batch.readings))
    return payloads, sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=23 * 86_400)
    parser.add_argument("--baseline-readings", type=int, default=23 * 86_400)
    parser.add_argument("--paced-rate", type=float, default=100_000, help="readings/s")
    parser.add_argument("--paced-seconds", type=float, default=10)
    parser.add_argument("--tiny", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--no-record", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--naive-sink", nargs=2, metavar=("PORT", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive_sink:
        naive_sink(int(args.naive_sink[0]), args.naive_sink[1])
        return
    if args.tiny:
        args.readings, args.baseline_readings, args.paced_seconds = 23 * 600, 23 * 200, 1
    binary = shutil.which("mosquitto")
    if binary is None:
        raise SystemExit("mosquitto is not installed: apt-get install mosquitto")
    day = 86_400 * SECOND
    t0 = time.time_ns() - time.time_ns() % day - 2 * day
    ts, values = columns(args.readings // 23, t0)
    payloads, sizes = encoded(ts, values, 0)
    # The paced set: the day before, sequence numbers after the first set's.
    paced_ts, paced_values = columns(
        int(args.paced_rate * args.paced_seconds) // 23, t0 - day, seed=2
    )
    paced_payloads, paced_sizes = encoded(paced_ts, paced_values, sum(sizes))
    load = {
        "payloads": payloads, "sizes": sizes, "paced_payloads": paced_payloads,
        "paced_sizes": paced_sizes, "rate": args.paced_rate,
    }  # fmt: skip
    cut = int(np.searchsorted(np.cumsum(sizes), args.baseline_readings)) + 1
    others = set(range(os.cpu_count() or 1)) - {EDGE_CORE} or {EDGE_CORE}
    os.sched_setaffinity(0, others)
    with tempfile.TemporaryDirectory(dir="/var/tmp", prefix="bench_ingest_") as tmp:
        work = Path(tmp)
        broker = Mosquitto(binary, work / "broker")
        broker.start()
        assert broker.process is not None
        os.sched_setaffinity(broker.process.pid, others)
        try:
            edge = run_edge(broker, load, work)
            stored = stored_figures(edge["store"], [(ts, values), (paced_ts, paced_values)], work)
            naive = run_naive(broker, payloads[:cut], sizes[:cut], work)
        finally:
            broker.stop()
    setup = {
        "date": now(),
        "machine": machine(),
        "paced_rate": args.paced_rate,
        "paced_readings": sum(paced_sizes),
        "readings": sum(sizes),
        "baseline_readings": sum(sizes[:cut]),
    }
    text = markdown(setup, edge, naive, stored)
    console.print(text)
    if not args.no_record:
        record_section("ingest", text)
        console.print("recorded in docs/benchmarks.md")


if __name__ == "__main__":
    main()
