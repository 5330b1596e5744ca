"""`python -m line_sim` is `factory-line` (the orchestrator starts its children this way)."""

from line_sim.cli import app

app(prog_name="factory-line")
