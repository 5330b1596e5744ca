"""The wiring sheet as a technician sees it: headless Chromium screenshots it into test-output/."""

from __future__ import annotations

import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np

from hardware.wiring_sheet import write_sheet
from tests.support.requirements import require_binary
from tests.unit.test_wiring_sheet import CABINET, EXAMPLE_SHEET, load

ROOT = Path(__file__).parents[2]
OUTPUT = ROOT / "test-output"
A4_PX = (794, 1123)  # A4 at CSS 96 dpi


def decode_png(data: bytes) -> np.ndarray:
    """8-bit RGB/RGBA PNG -> array (height, width, channels); enough for Chromium's output."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert header is not None
    width, height, depth, colour = header[:4]
    assert depth == 8 and colour in (2, 6), f"unexpected PNG format {header}"
    channels = 3 if colour == 2 else 4
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8)
    rows = raw.reshape(height, 1 + width * channels)
    out = np.zeros((height, width * channels), dtype=np.int32)
    for y in range(height):
        _unfilter(rows[y, 0], rows[y, 1:].astype(np.int32), out, y, channels)
    return out.reshape(height, width, channels).astype(np.uint8)


def _unfilter(kind: int, line: np.ndarray, out: np.ndarray, y: int, bpp: int) -> None:
    up = out[y - 1] if y else np.zeros_like(line)
    if kind == 0:
        out[y] = line
    elif kind == 2:
        out[y] = (line + up) % 256
    else:  # Sub, Average and Paeth depend on the left neighbour: go byte by byte
        cur = np.zeros_like(line)
        for i in range(len(line)):
            left = cur[i - bpp] if i >= bpp else 0
            upper_left = up[i - bpp] if i >= bpp else 0
            if kind == 1:
                pred = left
            elif kind == 3:
                pred = (left + up[i]) // 2
            else:
                p = left + up[i] - upper_left
                pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - upper_left)
                pred = left if pa <= pb and pa <= pc else (up[i] if pb <= pc else upper_left)
            cur[i] = (line[i] + pred) % 256
        out[y] = cur


def screenshot(html: Path, png: Path, profile: Path) -> np.ndarray:
    chromium = require_binary("chromium", "sudo apt-get install chromium (scripts/bootstrap.sh)")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    command = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", f"--user-data-dir={profile}", "--hide-scrollbars",
        f"--window-size={A4_PX[0]},{A4_PX[1]}", f"--screenshot={png}", html.as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert png.exists(), f"chromium wrote no screenshot:\n{done.stderr[-2000:]}"
    return decode_png(png.read_bytes())


def assert_drawn(image: np.ndarray) -> None:
    assert image.shape[:2] == (A4_PX[1], A4_PX[0])
    ink = (image[:, :, :3] < 100).all(axis=2).mean()
    # A blank page, or a page of raw markup, would fall outside this range.
    assert 0.005 < ink < 0.3, f"dark pixel share {ink:.4f}: the sheet did not render"


def test_example_sheet_renders(tmp_path: Path) -> None:
    image = screenshot(
        EXAMPLE_SHEET / "anodizing-gw1.html", OUTPUT / "wiring-anodizing-gw1.png", tmp_path
    )
    assert_drawn(image)
    # The Ethernet drawing's header box is the sheet's light blue-grey (#eef2f7).
    assert (image[:, :, :3] == (0xEE, 0xF2, 0xF7)).all(axis=2).sum() > 1000


def test_cabinet_sheet_renders(tmp_path: Path) -> None:
    config = load(CABINET)
    html = write_sheet(config, CABINET, tmp_path / "sheet")[0]
    image = screenshot(html, OUTPUT / "wiring-sheet-gw.png", tmp_path / "profile")
    assert_drawn(image)
