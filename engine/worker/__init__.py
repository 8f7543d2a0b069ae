"""Worker processes: claim the queued work of their worker groups from a shared store and run
it (``headrace worker``)."""

from engine.worker.process import DEFAULT_LEASE_SECONDS, DEFAULT_SLOTS, Worker, WorkerOptions

__all__ = ["DEFAULT_LEASE_SECONDS", "DEFAULT_SLOTS", "Worker", "WorkerOptions"]
