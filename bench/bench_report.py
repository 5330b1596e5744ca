"""Shared by the edge benchmarks: a description of the machine, and writing one section of
docs/benchmarks.md (only the text between this benchmark's markers, under "## Edge")."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
HEADING = "## Edge"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown memory"


def machine() -> str:
    u = platform.uname()
    return (
        f"`{u.system} {u.release} {u.machine}`, {os.cpu_count()} CPUs ({_cpu_model()}),"
        f" {_memory()} RAM, Python {sys.version.split()[0]}"
    )


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def record_section(
    name: str,
    body: str,
    path: Path = DOC,
    heading: str = HEADING,
    intro: str = "Produced by `bench/paper_query.py` and `bench/ingest.py`.",
) -> None:
    """Replace this benchmark's block (between its markers) under `heading` ('## Edge'),
    adding the heading or the block when missing; everything else in the file stays."""
    tag = heading.removeprefix("## ").strip().lower()
    begin, end = f"<!-- {tag}:{name} -->", f"<!-- /{tag}:{name} -->"
    block = f"{begin}\n{body.strip()}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    elif heading in text:
        head, rest = text.split(heading, 1)
        # After the heading's own intro line(s), before the next "## " section.
        cut = rest.find("\n## ")
        section, tail = (rest, "") if cut < 0 else (rest[:cut], rest[cut:])
        text = head + heading + section.rstrip() + "\n\n" + block + "\n" + tail
    else:
        text = text.rstrip() + f"\n\n{heading}\n\n{intro}\n\n{block}\n"
    path.write_text(text)
