"""The HTML report and start-up: ``alphaseq report`` against the run it reports on.

    python benchmarks/bench_report.py [--run-dir DIR] [--repeat 3] [--src SRC] [--set K=V]

Times, each in a fresh interpreter (so imports count, as they do for a user), the
wall and CPU seconds of: ``alphaseq report DIR`` (the report time), two floors measured
in the same session (reading the run record alone, and importing matplotlib to save one
empty figure), ``alphaseq --help`` and ``import alphaseq.cli`` (start-up). One more
process splits a report build into imports, reading the run, drawing the charts and
the rest of the page. The report time is then given as a share of the quickstart run
that made ``DIR`` (target < 10 %) and as a multiple of the floors.

``DIR`` (default: a folder in the temporary directory) is reused when it holds a
finished run; otherwise ``alphaseq run quickstart --out DIR`` makes it first (minutes;
``--set`` is passed on, e.g. ``--set data.start=2018-01-01`` for a one-fold run) and
its time is kept next to it in ``DIR.run-time.json``. For a run made elsewhere
the run's wall time is read from the first and last lines of its ``run.log``.
``--src`` puts another source tree first on the path (e.g. ``git archive HEAD
src/alphaseq | tar -x -C /tmp/before`` then ``--src /tmp/before/src``: the code
before a change, measured on the same run and machine).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# One report build split into its stages, printed as JSON (run in a fresh interpreter).
_STAGES = """
import json, sys, time
clock = lambda: (time.perf_counter(), time.process_time())
start = clock()
from alphaseq.report import figures, html
from alphaseq.report.data import load_run
imported = clock()
data = load_run(sys.argv[1])
loaded = clock()
spent = [0.0, 0.0]
draw_uri = figures.png_data_uri
def timed(draw, size):
    before = clock()
    try:
        return draw_uri(draw, size)
    finally:
        after = clock()
        spent[0] += after[0] - before[0]
        spent[1] += after[1] - before[1]
figures.png_data_uri = timed
page = html.render_report(data)
rendered = clock()
print(json.dumps({
    "imports": [imported[k] - start[k] for k in (0, 1)],
    "read the run": [loaded[k] - imported[k] for k in (0, 1)],
    "charts": spent,
    "rest of the page": [rendered[k] - loaded[k] - spent[k] for k in (0, 1)],
    "page_bytes": len(page.encode()),
}))
"""

_READ_RUN = "import sys\nfrom alphaseq.report import load_run\nload_run(sys.argv[1])"

_EMPTY_FIGURE = """
import io
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
fig = Figure(figsize=(7.4, 3.0), dpi=144)
FigureCanvasAgg(fig).print_png(io.BytesIO())
"""


def child(argv: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system) of one child process, and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} failed:\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def run_time(
    run_dir: Path, env: dict[str, str], overrides: list[str]
) -> tuple[float, float | None, str]:
    """Wall and CPU seconds of the run in ``run_dir`` (made here if missing)."""
    record = run_dir.parent / f"{run_dir.name}.run-time.json"
    if (run_dir / "metrics.json").is_file():
        if record.is_file():
            saved = json.loads(record.read_text())
            return saved["wall"], saved["cpu"], "measured when this benchmark made it"
        stamps = [
            line[:23]
            for line in (run_dir / "run.log").read_text().splitlines()
            if line[:4].isdigit()
        ]
        first, last = (
            dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in (stamps[0], stamps[-1])
        )
        return (last - first).total_seconds(), None, "wall from run.log, CPU unknown"
    print(f"making the run: alphaseq run quickstart --out {run_dir} (minutes) ...", flush=True)
    argv = [sys.executable, "-m", "alphaseq", "run", "quickstart", "--out", str(run_dir)]
    argv += [item for value in overrides for item in ("--set", value)]
    wall, cpu, _ = child(argv, env)
    record.write_text(json.dumps({"wall": wall, "cpu": cpu}))
    return wall, cpu, "measured now"


def line(label: str, samples: list[tuple[float, float]], floor: float | None = None) -> str:
    wall = statistics.median(s[0] for s in samples)
    cpu = statistics.median(s[1] for s in samples)
    best = min(s[1] for s in samples)
    ratio = f"   {cpu / floor:5.1f}x the read" if floor else ""
    return f"{label:32s} wall {wall:6.2f} s   cpu {cpu:6.2f} s (min {best:5.2f}){ratio}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--run-dir", default=str(Path(tempfile.gettempdir()) / "alphaseq-bench-quickstart")
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--src", help="source tree to benchmark instead of the installed one")
    parser.add_argument("--set", action="append", default=[], help="passed to alphaseq run")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [args.src, env.get("PYTHONPATH")]))
    run_dir = Path(args.run_dir).resolve()
    py = sys.executable

    run_wall, run_cpu, how = run_time(run_dir, env, args.set)
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; source "
        f"{args.src or 'installed'}; run {run_dir}: wall {run_wall:.1f} s, "
        + (f"cpu {run_cpu:.1f} s" if run_cpu is not None else "cpu -")
        + f" ({how}); medians of {args.repeat}"
    )
    cases = {
        "alphaseq report": [py, "-m", "alphaseq", "report", str(run_dir)],
        "floor: read the run record": [py, "-c", _READ_RUN, str(run_dir)],
        "floor: one empty figure": [py, "-c", _EMPTY_FIGURE],
        "alphaseq --help": [py, "-m", "alphaseq", "--help"],
        "import alphaseq.cli": [py, "-c", "import alphaseq.cli"],
    }
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for _ in range(args.repeat):  # interleaved: a burst of load hits every case alike
        for name, argv in cases.items():
            samples[name].append(child(argv, env)[:2])
    read = statistics.median(s[1] for s in samples["floor: read the run record"])
    for name in cases:
        print(line(name, samples[name], read if name == "alphaseq report" else None))

    report_wall = statistics.median(s[0] for s in samples["alphaseq report"])
    report_cpu = statistics.median(s[1] for s in samples["alphaseq report"])
    empty = statistics.median(s[1] for s in samples["floor: one empty figure"])
    shares = f"report / run: wall {report_wall / run_wall:.2%}"
    if run_cpu is not None:
        shares += f", cpu {report_cpu / run_cpu:.2%}"
    print(
        f"{shares}   (target < 10 %); report / empty-figure process: {report_cpu / empty:.1f}x cpu"
    )

    stages = json.loads(child([py, "-c", _STAGES, str(run_dir)], env)[2])
    total = sum(v[1] for k, v in stages.items() if k != "page_bytes")
    print(f"one build, by stage (page {stages.pop('page_bytes') / 1e6:.2f} MB):")
    for name, (wall, cpu) in stages.items():
        print(f"  {name:30s} wall {wall:6.2f} s   cpu {cpu:6.2f} s   {cpu / total:6.1%}")


if __name__ == "__main__":
    main()
