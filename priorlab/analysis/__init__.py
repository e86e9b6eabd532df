"""The results store and the statistics over it. No torch, no Ray: the dashboard imports this."""

from priorlab.analysis.store import STATUSES, SchemaVersionError, Store, open_store

__all__ = ["Store", "STATUSES", "SchemaVersionError", "open_store"]
