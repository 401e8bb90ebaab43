"""Render ``benchmarks/results.json`` into the results section of ``benchmarks/README.md``.

Usage: ``python benchmarks/report.py [results.json] [--print]``. The table replaces the text
between the ``<!-- results:start -->`` and ``<!-- results:end -->`` markers of the README;
``--print`` writes it to stdout instead.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _fmt_value(value: float | None, unit: str) -> str:
    if value is None:
        return ""
    if unit == "x":
        return f"{value:.1f} x"
    if unit == "B":
        return f"{value / 1e6:,.0f} MB"
    if value >= 1.0:
        return f"{value:.2f} s"
    if value >= 0.01:
        return f"{value * 1e3:.0f} ms"
    if value >= 1e-4:
        return f"{value * 1e3:.2f} ms"
    return f"{value * 1e6:.1f} µs"


def _fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    return f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.1f}"


def _met(row: dict) -> str:
    if row.get("meets_target") is None:
        return ""
    return "yes" if row["meets_target"] else "**no**"


def render(payload: dict) -> str:
    """Markdown: machine and versions, then one table row per figure."""
    m = payload["machine"]
    versions = ", ".join(
        f"{k} {m[k]}" for k in ("python", "numpy", "scipy", "astropy", "reproject", "torch",
                                "PyQt6", "pyqtgraph", "pytest-benchmark", "diascan") if k in m
    )
    lines = [
        f"Run {payload['when']} on the **{payload['demo']}** demo "
        f"(`{' '.join(payload.get('argv', []))}`), git {m.get('git_commit', 'n/a')}.",
        "",
        f"- Machine: {m['cpu']}, {m['cores_available']} cores available, {m['memory']} RAM, "
        f"{m['platform']}",
        f"- Load average (1/5/15 min) at start: {payload['load_average_start']}, at end: "
        f"{payload['load_average_end']}",
        f"- Copying one 4072 x 4000 float32 frame in memory: "
        f"{payload['frame_copy_floor_s'] * 1e3:.1f} ms",
        f"- Versions: {versions}",
        "",
        "| Benchmark | Measured | Floor | x floor | Target | Met | Notes |",
        "|---|---:|---:|---:|---:|:-:|---|",
    ]
    for r in payload["results"]:
        unit = r.get("unit", "s")
        if unit == "x":  # a ratio of two figures of this run: no floor
            floor, ratio = "", ""
        else:
            floor = (_fmt_value(r["floor"], unit) if unit == "s"
                     else f"{r['floor'] / 1e6:,.0f} MB data")
            ratio = _fmt_ratio(r["ratio_to_floor"])
        lines.append(
            f"| {r['name']} | {_fmt_value(r['value'], unit)} | {floor} | "
            f"{ratio} | {_fmt_value(r['target'], unit)} | {_met(r)} | "
            f"{r.get('note', '')} |"
        )
    return "\n".join(lines)


def update_readme(table: str, readme: Path = HERE / "README.md") -> None:
    """Replace the marked results section of ``readme`` (append one when missing)."""
    text = readme.read_text() if readme.exists() else "# Benchmarks\n"
    block = f"{START}\n{table}\n{END}"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1]
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## Results\n\n" + block + "\n"
    readme.write_text(text)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    to_stdout = "--print" in args
    paths = [a for a in args if a != "--print"]
    path = Path(paths[0]) if paths else HERE / "results.json"
    if not path.exists():
        print(f"report.py: error: {path} not found; run `make bench` first", file=sys.stderr)
        return 2
    table = render(json.loads(path.read_text()))
    if to_stdout:
        print(table)
    else:
        update_readme(table)
        print(f"updated {HERE / 'README.md'} from {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
