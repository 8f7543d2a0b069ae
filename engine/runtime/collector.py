"""The garbage collector's thresholds for a long-running engine or worker process.

CPython collects its youngest generation every 700 net allocations. A scheduler that runs
10,000 instance actors at once allocates (task groups, cancel scopes, events, records)
far faster than that, and each collection walks the young objects and, every hundred or so,
everything: with 10,000 instances due at once, a scheduler-only engine spent about 60% of
its time in the collector (32 s to queue them all, 13 s with the collector off; measured
with py-spy, see benchmarks/README.md). Fewer, larger young collections keep nearly all of
the gain and still collect reference cycles.
"""

from __future__ import annotations

import gc

#: (youngest, middle, oldest) thresholds: 50,000 allocations between young collections
THRESHOLDS = (50_000, 50, 50)


def tune_for_many_actors() -> None:
    """Raise the thresholds (never lower them: a caller may have set its own)."""
    current = gc.get_threshold()
    if current[0] and current[0] < THRESHOLDS[0]:
        gc.set_threshold(*(max(c, t) for c, t in zip(current, THRESHOLDS, strict=True)))
