"""The wiring sheet as it prints: headless Chromium makes the PDF, poppler its pages and text.

The page PNGs land in test-output/wiring-sheet/ for a person to look at; the assertions read
the PDF itself: every page carries the gateway id and "Page x of y", no text prints below
8 pt, and no page is blank.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support.requirements import require_binary

ROOT = Path(__file__).parents[2]
SHEET = ROOT / "examples" / "wiring" / "line2-gw1.html"
OUTPUT = ROOT / "test-output" / "wiring-sheet"
# DejaVu Sans, the sheet's font: ascent + descent is 1.164 em, so pdftotext's word boxes are
# 1.164 x the font size tall; 8 pt text gives 9.31 pt boxes.
EM_HEIGHT = 1.164
WORD = re.compile(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">([^<]*)<')


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, f"{command[0]} failed:\n{done.stderr[-2000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chromium = require_binary("chromium", "sudo apt-get install chromium (scripts/bootstrap.sh)")
    require_binary("pdftoppm", "sudo apt-get install poppler-utils (scripts/bootstrap.sh)")
    tmp = tmp_path_factory.mktemp("print")
    out = tmp / "sheet.pdf"
    run(
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}", "--no-pdf-header-footer",
        f"--print-to-pdf={out}", SHEET.as_uri(),
    )  # fmt: skip
    assert out.exists() and out.stat().st_size > 10_000
    return out


def page_count(pdf: Path) -> int:
    match = re.search(r"^Pages:\s+(\d+)", run("pdfinfo", str(pdf)), re.MULTILINE)
    assert match is not None
    return int(match[1])


def test_every_page_names_the_gateway_and_its_number(pdf: Path) -> None:
    pages = page_count(pdf)
    assert 4 <= pages <= 12, f"{pages} pages"
    for n in range(1, pages + 1):
        text = run("pdftotext", "-f", str(n), "-l", str(n), "-layout", str(pdf), "-")
        assert "Wiring sheet · gateway line2-gw1" in text, f"page {n} has no gateway id"
        assert f"Page {n} of {pages}" in text, f"page {n} has no page number"
    last = run("pdftotext", "-f", str(pages), "-l", str(pages), str(pdf), "-")
    assert "Electrical sign-off" in last  # the sign-off block is not split from its rows


def test_no_text_prints_below_8_pt(pdf: Path) -> None:
    boxes = run("pdftotext", "-bbox", str(pdf), "-")
    heights = [(float(y1) - float(y0), word) for y0, y1, word in WORD.findall(boxes)]
    assert len(heights) > 500
    smallest, word = min(heights)
    assert smallest / EM_HEIGHT >= 7.95, f"{word!r} prints at {smallest / EM_HEIGHT:.1f} pt"


def test_pages_render_to_png_with_ink_on_each(pdf: Path, tmp_path: Path) -> None:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for old in OUTPUT.glob("page-*.png"):
        old.unlink()
    run("pdftoppm", "-r", "80", "-png", str(pdf), str(OUTPUT / "page"))
    pngs = sorted(OUTPUT.glob("page-*.png"))
    assert len(pngs) == page_count(pdf)
    run("pdftoppm", "-r", "30", "-gray", str(pdf), str(tmp_path / "g"))
    for pgm in sorted(tmp_path.glob("g-*.pgm")):
        ink = (read_pgm(pgm) < 128).mean()
        # A blank page, or one black with raw markup, falls outside this band.
        assert 0.005 < ink < 0.35, f"{pgm.name}: dark share {ink:.4f}"


def read_pgm(path: Path) -> np.ndarray:
    """Binary PGM (P5) as written by pdftoppm -gray: header, then one byte per pixel."""
    data = path.read_bytes()
    fields = data.split(maxsplit=4)
    assert fields[0] == b"P5"
    width, height = int(fields[1]), int(fields[2])
    pixels = np.frombuffer(fields[4][: width * height], dtype=np.uint8)
    return pixels.reshape(height, width)
