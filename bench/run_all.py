"""Run every benchmark and print a summary table of figures and ratios (``make bench``).

Why one runner: the ratios are only meaningful from one run on one machine, so this
runs all of them back to back, streams their output, and collects each one's
``BENCH_RESULT`` line (see ``common.report``) into a table. Benchmarks that need
PostgreSQL are skipped, with the reason, when none answers; the client comparison
runs in ``bench/.venv-bench`` (created here on first use, with ``wechatpayv3`` and this
package) so that ``wechatpayv3`` never enters the project's own environment.

    .venv/bin/python bench/run_all.py [--quick] [--only client,bulk,...]  (names: BENCHMARKS)

``--quick`` runs smaller sizes (for a smoke test; the ratios are then rougher). Never
fails on a missed target: it prints figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCH_VENV = HERE / ".venv-bench"
RESULT_PREFIX = "BENCH_RESULT "

# name -> (script, full arguments, quick arguments, needs the bench venv)
BENCHMARKS: dict[str, tuple[str, list[str], list[str], bool]] = {
    "client": ("bench_client.py", [], ["--pairs", "200"], True),
    "bulk": ("bench_bulk.py", [], ["--returns", "300", "--sequential", "50"], False),
    "workers": ("bench_workers.py", [], ["--returns", "300"], False),
    "rest": ("bench_rest.py", [], ["--rows", "2000"], False),
    "simulator": ("bench_simulator.py", [], ["--seconds", "2"], False),
    "merchants": ("bench_merchants.py", [], ["--returns", "100"], False),
    "ratelimit": ("bench_ratelimit.py", [], ["--returns", "200"], False),
    "reconcile": ("bench_reconcile.py", [], ["--lines", "20000"], False),
    "quota": ("bench_quota.py", [], ["--returns", "100", "--workers", "1,2"], False),
    "tables": ("bench_tables.py", [], ["--large", "100000", "--repeats", "3"], False),
    "outbox": ("bench_outbox.py", [], ["--events", "10000", "--returns", "500"], False),
    "limiter": ("bench_limiter.py", [], ["--acquires", "5000", "--returns", "100"], False),
    "refunds": ("bench_refunds.py", [], ["--payments", "10", "--refunds", "2"], False),
}


#: What the bench venv holds: wechatpayv3, this package and its simulator (editable).
BENCH_REQUIREMENTS = ["wechatpayv3", "-e", str(ROOT), "-e", str(ROOT / "simulator")]


def bench_python() -> tuple[str | None, str]:
    """The bench venv's interpreter, created or brought up to date if needed; (path, problem).

    Its ``.installed`` marker records what was installed, so a venv made for another
    list (before the simulator was a distribution of its own) is completed, not trusted.
    """
    python = BENCH_VENV / "bin" / "python"
    ready = BENCH_VENV / ".installed"
    wanted = " ".join(BENCH_REQUIREMENTS)
    if ready.exists() and ready.read_text() == wanted:
        return str(python), ""
    print(f"creating {BENCH_VENV} (wechatpayv3 + this package + its simulator) ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(BENCH_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", *BENCH_REQUIREMENTS],
    ]
    for step in steps:
        out = subprocess.run(step, capture_output=True, text=True)
        if out.returncode:
            return None, f"could not create the bench venv: {out.stderr.strip()[-300:]}"
    ready.write_text(wanted)
    return str(python), ""


def simulator_result(lines: list[str]) -> dict:
    """``bench_simulator.py`` prints no result line: read its throughput lines."""
    found = {}
    phase = None
    for line in lines:
        if m := re.match(r"\[(\w+)\]", line):
            phase = m.group(1)
        if m := re.search(r"throughput:\s+([\d.]+) req/s\s+\(([\d.]+)x", line):
            found[phase] = (float(m.group(1)), float(m.group(2)))
    if not found:
        return {"name": "5. simulator throughput", "summary": "no figures", "met": None}
    summary = "; ".join(f"{p} {rps:.0f} req/s ({ratio:.2f}x)" for p, (rps, ratio) in found.items())
    ratio = min(r for _, r in found.values())
    return {
        "name": "5. simulator throughput",
        "summary": summary,
        "ratio": ratio,
        "target": ">= 300 signed creates/s",
        "met": found.get("presigned", (0, 0))[1] >= 1,
    }


def run(name: str, quick: bool) -> dict:
    script, full, quick_args, needs_venv = BENCHMARKS[name]
    python = sys.executable
    if needs_venv:
        python, problem = bench_python()
        if python is None:
            return {"name": name, "summary": f"skipped: {problem}", "met": None}
    command = [python, str(HERE / script), *(quick_args if quick else full)]
    print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    began = time.monotonic()
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines, result = [], None
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            continue
        lines.append(line.rstrip("\n"))
        print(line, end="", flush=True)
    proc.wait()
    print(f"--- {name}: {time.monotonic() - began:.0f} s, exit code {proc.returncode}", flush=True)
    if name == "simulator" and result is None:
        result = simulator_result(lines)
    if result is None:
        tail = lines[-1] if lines else ""
        result = {"name": name, "summary": f"failed (exit {proc.returncode}): {tail}", "met": None}
    return result


def table(results: list[dict]) -> str:
    rows = [("benchmark", "ratio", "target met", "figures")]
    for r in results:
        ratio = r.get("ratio")
        met = {True: "yes", False: "NO", None: "-"}[r.get("met")]
        rows.append((r["name"], "-" if ratio is None else f"{ratio:g}", met, r["summary"]))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = []
    for n, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        lines.append("  ".join([*cells, row[3]]))
        if n == 0:
            lines.append("-" * (sum(widths) + 6 + len("figures")))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, rougher ratios")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated names")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        raise SystemExit(f"unknown benchmarks: {', '.join(sorted(unknown))}")
    print(f"cores: {os.cpu_count()}; python: {sys.version.split()[0]}", flush=True)
    results = [run(name, args.quick) for name in names]
    print("\n=== summary (ratios from this run)\n" + table(results))


if __name__ == "__main__":
    main()
