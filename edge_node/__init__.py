"""Edge node: ingest, time-series store, HTTP API and web UI for one production line."""

__version__ = "0.1.0"
