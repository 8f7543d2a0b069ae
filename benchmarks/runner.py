"""Run each path's contenders several times, alternating, and collect the measurements."""

from __future__ import annotations

import json
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any

from benchmarks.measure import CommandFailed, Measurement, run
from benchmarks.paths import HEADRACE, NATIVE, OURS, PEERS, BenchPath, Contender


@dataclass
class ContenderResult:
    label: str
    runs: list[Measurement] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.runs) and self.error is None

    @property
    def median_seconds(self) -> float:
        return statistics.median(m.seconds for m in self.runs)

    @property
    def peak_rss(self) -> int:
        return max(m.peak_rss for m in self.runs)

    @property
    def median_cpu(self) -> float:
        return statistics.median(m.cpu_seconds for m in self.runs)


@dataclass
class PathResult:
    path: BenchPath
    results: dict[str, ContenderResult] = field(default_factory=dict)

    def ratio(self, ours: str, other: str) -> float | None:
        """Median over rounds of other_seconds / our_seconds (above 1: headrace is faster).

        Runs alternate, so round i of both was measured at nearly the same time; pairing them
        cancels much of the machine's drift. Peers, run fewer times, use medians.
        """
        a, b = self.results.get(ours), self.results.get(other)
        if a is None or b is None or not a.ok or not b.ok:
            return None
        if len(a.runs) == len(b.runs):
            return statistics.median(y.seconds / x.seconds for x, y in zip(a.runs, b.runs,
                                                                            strict=True))
        return b.median_seconds / a.median_seconds


def _log(message: str) -> None:
    print(f"benchmarks: {message}", file=sys.stderr, flush=True)


def _check(contender: Contender, m: Measurement) -> None:
    if contender.expect_rows is None:
        return
    try:
        rows = int(json.loads(m.stdout.strip().splitlines()[-1])["rows"])
    except (ValueError, KeyError, IndexError):
        raise CommandFailed(f"no JSON summary from {contender.label}: {m.stdout[-300:]}") \
            from None
    if rows != contender.expect_rows:
        raise CommandFailed(f"{contender.label} copied {rows} rows, expected "
                            f"{contender.expect_rows}")


def _measure(path: BenchPath, contender: Contender, env: dict[str, str],
             result: ContenderResult, timeout: float) -> None:
    if result.error is not None:
        return
    try:
        if contender.setup is not None:
            contender.setup()
        m = run(contender.argv, env, timeout=timeout)
        _check(contender, m)
    except (CommandFailed, RuntimeError) as exc:
        result.error = str(exc).strip().splitlines()[0][:300] + (
            "\n" + "\n".join(str(exc).strip().splitlines()[1:])[-600:]
            if len(str(exc).strip().splitlines()) > 1 else "")
        _log(f"{path.key} / {contender.label}: FAILED: {result.error}")
        return
    result.runs.append(m)
    _log(f"{path.key} / {contender.label}: {m.seconds:.2f} s, {m.cpu_seconds:.1f} CPU s, "
         f"{m.peak_rss / 1e6:.0f} MB peak RSS")


def run_path(path: BenchPath, env: dict[str, str], *, runs: int, peer_runs: int,
             peers: bool, timeout: float = 1800.0) -> PathResult:
    out = PathResult(path)
    ours_and_native = [c for c in path.contenders if c.label in (*OURS, NATIVE)]
    for c in path.contenders:
        out.results[c.label] = ContenderResult(c.label)
    for round_no in range(runs):
        # alternate the order so neither side always runs first (caches, background work)
        order = ours_and_native if round_no % 2 == 0 else list(reversed(ours_and_native))
        for contender in order:
            _measure(path, contender, env, out.results[contender.label], timeout)
    if peers:
        for _ in range(peer_runs):
            for contender in (c for c in path.contenders if c.label in PEERS):
                _measure(path, contender, env, out.results[contender.label], timeout)
    else:
        for label in PEERS:
            out.results.pop(label, None)
    return out


def summary_row(res: PathResult) -> dict[str, Any]:
    """One line of the main table (JSON-friendly)."""
    p = res.path
    row: dict[str, Any] = {"path": p.key, "title": p.title, "rows": p.rows, "bytes": p.nbytes}
    for label, r in res.results.items():
        entry: dict[str, Any] = {"runs": len(r.runs), "error": r.error}
        if r.runs:
            s = r.median_seconds
            entry.update(seconds=round(s, 3), cpu_seconds=round(r.median_cpu, 2),
                         peak_rss_mb=round(r.peak_rss / 1e6, 1),
                         rows_per_s=round(p.rows / s) if p.rows else None,
                         mb_per_s=round(p.nbytes / 1e6 / s, 1) if p.nbytes else None,
                         all_seconds=[round(m.seconds, 3) for m in r.runs])
        row[label] = entry
    row["ratio_vs_native"] = _round(res.ratio(HEADRACE, NATIVE))
    row["pipeline_ratio_vs_native"] = _round(res.ratio("headrace run", NATIVE))
    row["ratio_vs_sling"] = _round(res.ratio(HEADRACE, "sling"))
    row["ratio_vs_dlt"] = _round(res.ratio(HEADRACE, "dlt"))
    return row


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)
