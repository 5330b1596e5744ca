"""Comments and docs give reasons, not tracker codes, and name no file outside the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TREES = ("factory_common", "gateway_image", "edge_node", "fleet", "provisioning", "hardware")
TREES += ("line_sim", "tests", "docs", "scripts", "bench", "deploy", "examples")
SUFFIXES = {".py", ".md", ".sh", ".yaml", ".yml", ".toml", ".service"}
# "issue 3", "issues 4-5", or a work-package code such as "H2": meaningless to a reader of the
# repository. Assembled so this file does not match itself.
TRACKER = re.compile(r"\bissues? #?\d|(?<![\w/.-])H\d(?![\w/.-])")
OUTSIDE = re.compile(r"\bDESIGN\.md\b|\bPAPER\.md\b")


def _cites(line: str) -> bool:
    """A source cited by address or title (another project's issue is a fact's source)."""
    return "://" in line or line.strip().startswith(("title:", "- title:"))


def tracked_text_files() -> list[Path]:
    """The repository's own text files (git ls-files: not node_modules, .venv or vendored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", *TREES, "README.md", "Dockerfile", "Makefile", "pyproject.toml"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    files = [ROOT / name for name in listed.split("\0") if name]
    return [
        path
        for path in files
        if (path.suffix in SUFFIXES or path.name in {"Dockerfile", "Makefile"})
        and "vendor" not in path.parts
        and path.is_file()
    ]


@pytest.mark.parametrize("pattern", [TRACKER, OUTSIDE], ids=["tracker codes", "outside files"])
def test_no_file_leans_on_what_the_repository_does_not_hold(pattern: re.Pattern[str]) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in tracked_text_files()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if pattern.search(line) and path.name != Path(__file__).name and not _cites(line)
    ]
    assert found == [], "say the reason instead:\n" + "\n".join(found)


def test_the_case_study_the_docs_cite_is_in_the_repository() -> None:
    assert "anodizing" in (ROOT / "docs" / "paper.md").read_text()
