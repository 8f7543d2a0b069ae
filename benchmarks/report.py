"""The tables: Markdown for people (stdout, README) and the same data as JSON."""

from __future__ import annotations

from typing import Any


def _fmt(x: float | int | None, spec: str = ",.0f", suffix: str = "") -> str:
    return "-" if x is None else f"{x:{spec}}{suffix}"


def main_table(rows: list[dict[str, Any]]) -> str:
    head = ("| path | headrace copy rows/s | MB/s | peak RSS | native rows/s | MB/s | "
            "ratio vs native | headrace run ratio | sling ratio | dlt ratio |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        hr, nat = r.get("headrace copy", {}), r.get("native", {})
        hr_rate = hr.get("rows_per_s") if r["rows"] else None
        nat_rate = nat.get("rows_per_s") if r["rows"] else None
        lines.append(
            f"| {r['title']} | {_cell(hr, hr_rate)} | {_fmt(hr.get('mb_per_s'), '.1f')} | "
            f"{_fmt(hr.get('peak_rss_mb'), '.0f', ' MB')} | {_cell(nat, nat_rate)} | "
            f"{_fmt(nat.get('mb_per_s'), '.1f')} | {_ratio(r, 'ratio_vs_native', 'native')} | "
            f"{_ratio(r, 'pipeline_ratio_vs_native', 'headrace run')} | "
            f"{_ratio(r, 'ratio_vs_sling', 'sling')} | {_ratio(r, 'ratio_vs_dlt', 'dlt')} |")
    return "\n".join(lines)


def _cell(entry: dict[str, Any], rate: float | None) -> str:
    if entry.get("error"):
        return "failed"
    return _fmt(rate)


def _ratio(row: dict[str, Any], key: str, label: str) -> str:
    value = row.get(key)
    if value is not None:
        return f"{value:.2f}"
    entry = row.get(label) or {}
    other = row.get("headrace copy") or {}
    if entry.get("error") or other.get("error"):
        return "failed"
    return "-"


def detail_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| path | contender | runs | median s | all runs (s) | CPU s | peak RSS |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        for label in ("headrace copy", "headrace run", "native", "sling", "dlt"):
            e = r.get(label)
            if not e:
                continue
            if e.get("error"):
                lines.append(f"| {r['path']} | {label} | {e['runs']} | failed: "
                             f"{e['error'].splitlines()[0][:120]} | | | |")
                continue
            runs = ", ".join(f"{s:.2f}" for s in e["all_seconds"])
            lines.append(f"| {r['path']} | {label} | {e['runs']} | {e['seconds']:.2f} | "
                         f"{runs} | {e['cpu_seconds']:.1f} | {e['peak_rss_mb']:.0f} MB |")
    return "\n".join(lines)


def sweep_tables(sweeps: list[dict[str, Any]]) -> str:
    out = []
    for s in sweeps:
        out.append(f"**{s['name']}** (`{s['knob']}`)\n")
        out.append("| value | s | MB/s | rows/s | peak RSS |\n|---|---|---|---|---|")
        for p in s["points"]:
            value = p["value"]
            shown = f"{value // 2**20} MiB" if s["knob"] in ("chunk_size", "copy_part_size") \
                else str(value)
            if p.get("error"):
                out.append(f"| {shown} | failed: {p['error'][:80]} | | | |")
                continue
            out.append(f"| {shown} | {p['seconds']:.2f} | {p['mb_per_s']:.1f} | "
                       f"{_fmt(p.get('rows_per_s'))} | {p['peak_rss_mb']:.0f} MB |")
        out.append("")
    return "\n".join(out)


def memory_table(points: list[dict[str, Any]]) -> str:
    """One line per path: peak RSS at the small and at the full size, side by side."""
    by_path: dict[str, dict[str, dict[str, Any]]] = {}
    for p in points:
        by_path.setdefault(p["path"], {})[p.get("size", "full")] = p

    def size(p: dict[str, Any]) -> str:
        return f"{p['rows']:,} rows" if p.get("rows") else f"{p.get('bytes', 0) / 1e6:,.0f} MB"

    def cell(p: dict[str, Any] | None) -> str:
        if p is None:
            return "-"
        if p.get("error"):
            return f"failed ({size(p)})"
        return f"{p['peak_rss_mb']:.0f} MB ({size(p)}, {p['seconds']:.1f} s)"

    lines = ["| path | small size | full size | growth |", "|---|---|---|---|"]
    for path, sizes in by_path.items():
        a, b = sizes.get("small"), sizes.get("full")
        growth = "-"
        if a and b and not a.get("error") and not b.get("error"):
            growth = f"{b['peak_rss_mb'] - a['peak_rss_mb']:+.0f} MB"
        lines.append(f"| {path} | {cell(a)} | {cell(b)} | {growth} |")
    return "\n".join(lines)


def overhead_table(noop: dict[str, Any] | None, polls: dict[str, Any] | None) -> str:
    lines = []
    if noop:
        lines += ["| no-op ShellCommandActivity instances | wall s | instances/s | CPU s | "
                  "peak RSS | finished |", "|---|---|---|---|---|---|",
                  f"| {noop['instances']:,} | {noop['seconds']:.2f} | "
                  f"{noop['instances_per_s']:.0f} | {noop['cpu_seconds']:.1f} | "
                  f"{noop['peak_rss_mb']:.0f} MB | {noop['finished']:,} |", ""]
    if polls:
        lines += ["| idle precondition polls | retryDelay | warm-up s | window s | CPU s in "
                  "window | % of one core | peak RSS |", "|---|---|---|---|---|---|---|",
                  f"| {polls['instances']:,} | {polls['retry_delay']} | "
                  f"{polls['warmup_seconds']:.1f} | {polls['window_seconds']:.0f} | "
                  f"{polls['cpu_seconds_in_window']:.2f} | {polls['core_percent']:.1f} % | "
                  f"{polls['peak_rss_mb']:.0f} MB |"]
    return "\n".join(lines)
