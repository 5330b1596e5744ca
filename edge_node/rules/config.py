"""The edge config's `rules:` section: which rules file to run and how often to look for edits."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from factory_common.config import StrictModel


class RulesConfig(StrictModel):
    path: Path  # the rules YAML; relative paths resolve against --data-dir
    reload_interval: float = Field(default=1.0, gt=0)  # seconds between mtime checks

    def resolve_path(self, data_dir: Path) -> Path:
        return self.path if self.path.is_absolute() else data_dir / self.path
