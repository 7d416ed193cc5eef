"""``./dev bench``: every throughput and latency figure of issue 13 in one run, each beside a limit
measured in the same run on the same machine, with its ratio and the issue's target.

    ./dev bench                       the table (a progress display while it runs)
    ./dev bench --json                JSON lines {metric, value, unit, limit, ratio, target, met}
    ./dev bench --quick               tiny sizes: checks that everything runs, measures nothing
    ./dev bench --only limits,e2e     some sections only (see --help for their names)

Each section runs in a process of its own (a crash, a hang or a leftover task of one cannot
distort the next), with its output in a log file; a section that hangs is stopped after
``--timeout`` seconds. The sections of other scripts (``relay``, ``consumer``, ``api``) are their
``async def measure(...) -> list[dict]``; one whose script or function is missing gives a row
that says so. The regency sections (``idle``, ``e2e``, ``pipeline``) share one ``pulih up``
regency, started once, in that order (idle memory first, while it is idle).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import inspect
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from figures import KEYS, Figure, unavailable  # noqa: E402

PROGRESS = "@progress "
"""A line a section prints to say what it is doing now (shown in the progress display)."""


@dataclass(frozen=True)
class Section:
    """A part of the run: the script it comes from and what it measures."""

    name: str
    script: str
    title: str
    regency: bool = False
    """Runs on the shared ``pulih up`` regency."""


SECTIONS = (
    Section("limits", "limits.py", "raw nats-py limits: publish, pull-consume, latency"),
    Section("relay", "relay_throughput.py", "outbox relay vs raw pipelined publish"),
    Section("consumer", "consumer_throughput.py", "consumer apply vs raw pull-consume"),
    Section("api", "api_throughput.py", "API screenings/s and latency, SQLite and PostgreSQL"),
    Section("idle", "idle_rss.py", "RSS of an idle regency", regency=True),
    Section("e2e", "latency_e2e.py", "end-to-end latency at 200 events/s", regency=True),
    Section("pipeline", "pipeline.py", "pipeline events/s: single requests and /v1/sync", regency=True),
)
BY_NAME = {s.name: s for s in SECTIONS}

QUICK_KWARGS: dict[str, Any] = {
    "seconds": 1.0,
    "rate": 20.0,
    "clients": 8,
    "events": 300,
    "count": 300,
    "concurrencies": (),
    "sweep_requests": 20,
    "stores": ("sqlite",),
}
"""What ``--quick`` passes to another script's ``measure`` that has no ``quick`` parameter (each
only if ``measure`` takes it)."""


@dataclass(frozen=True)
class Target:
    """One of the issue's targets: which figures it applies to and what meeting it means."""

    pattern: str
    """A regular expression (case-insensitive) the metric must match…"""
    words: str
    met: Callable[[Figure], bool]
    units: tuple[str, ...] = ()
    """…in one of these units (any when empty)…"""
    exclude: str = r"\braw\b|postgres|^limits\."
    """…and one it must not match: a limit, or a figure on PostgreSQL (the targets are SQLite's)."""

    def applies(self, row: Figure) -> bool:
        """Whether this target is about ``row``."""
        if self.units and row.get("unit") not in self.units:
            return False
        metric = str(row["metric"])
        if self.exclude and re.search(self.exclude, metric, re.IGNORECASE):
            return False
        return re.search(self.pattern, metric, re.IGNORECASE) is not None


def _value(row: Figure) -> float:
    return float(row["value"])


def _ratio(row: Figure) -> float:
    return float(row["ratio"])


TARGETS = (
    Target(r"relay", "ratio ≥ 0.50", lambda r: _ratio(r) >= 0.5, ("events/s",)),
    Target(r"consum|apply", "≥ 2,000/s", lambda r: _value(r) >= 2000, ("events/s",)),
    Target(r"^api\.sqlite\.p99_ms$", "≤ 50 ms", lambda r: _value(r) <= 50),
    Target(r"^pipeline\.(single|sync)\.events_per_s$", "≥ 2,000/s", lambda r: _value(r) >= 2000),
    Target(r"^e2e\.(single|sync)\.p99_ms$", "≤ 200 ms", lambda r: _value(r) <= 200),
    Target(r"^idle\.rss_mb$", "≤ 400 MB", lambda r: _value(r) <= 400),
)
"""The targets of issue 13 (2 cores, SQLite); a figure gets the first that applies. Other
scripts' figures are recognised by their names: ``relay`` with a ratio to raw publish, a
consumer's ``apply`` rate, ``api.sqlite.p99_ms``."""


def judged(row: Figure) -> Figure:
    """``row`` with its target and whether it is met (a row that brings its own keeps them)."""
    row = {key: row.get(key) for key in KEYS} | {k: v for k, v in row.items() if k not in KEYS}
    if "target" in row:
        return row
    for target in TARGETS:
        if target.applies(row):
            try:
                met = None if row["value"] is None else target.met(row)
            except (TypeError, ValueError):
                met = None
            return row | {"target": target.words, "met": met}
    return row | {"target": None, "met": None}


# --------------------------------------------------------------------------------------------
# a section, in its own process


def say(text: str) -> None:
    """Tell the harness what the section is doing now."""
    print(f"{PROGRESS}{text}", flush=True)


def load_measure(script: Path) -> Callable[..., Any] | str:
    """The script's ``measure`` coroutine function, or why there is none."""
    if not script.exists():
        return f"not available: bench/{script.name} does not exist (yet)"
    spec = importlib.util.spec_from_file_location(f"bench_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look their module up there
    spec.loader.exec_module(module)
    measure = getattr(module, "measure", None)
    if measure is None or not inspect.iscoroutinefunction(measure):
        return f"not available: bench/{script.name} has no async def measure(...)"
    return measure  # type: ignore[no-any-return]


def measure_kwargs(measure: Callable[..., Any], quick: bool) -> dict[str, Any]:
    """What to pass to another script's ``measure``: a progress callback if it takes one, and in
    quick mode ``quick=True`` or else the tiny sizes of :data:`QUICK_KWARGS` it takes."""
    parameters = inspect.signature(measure).parameters
    kwargs: dict[str, Any] = {}
    if "progress" in parameters:
        kwargs["progress"] = say
    if quick:
        if "quick" in parameters:
            kwargs["quick"] = True
        else:
            kwargs |= {k: v for k, v in QUICK_KWARGS.items() if k in parameters}
    return kwargs


def tidy(rows: Any, section: Section) -> list[Figure]:
    """The rows a ``measure`` returned, each with every key (a malformed answer becomes a row
    that says so)."""
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "metric" in r for r in rows):
        return [unavailable(section.name, f"bench/{section.script}'s measure() did not return rows")]
    return [{key: row.get(key) for key in KEYS} | row for row in rows]


async def run_script(section: Section, quick: bool) -> list[Figure]:
    """One script's rows."""
    found = load_measure(BENCH / section.script)
    if isinstance(found, str):
        return [unavailable(section.name, found)]
    say(section.title)
    return tidy(await found(**measure_kwargs(found, quick)), section)


async def run_regency_sections(sections: Sequence[Section], quick: bool, out: Path) -> None:
    """The regency sections on one ``pulih up`` regency, each one's rows written as soon as it
    is done (``out``: a JSON line per section)."""
    import idle_rss
    import latency_e2e
    import pipeline
    from running_regency import RunningRegency

    modules = {"idle": idle_rss, "e2e": latency_e2e, "pipeline": pipeline}
    with tempfile.TemporaryDirectory(prefix="pulih-bench-") as tmp:
        say("starting a regency (pulih up: nats-server and every service)")
        regency = RunningRegency(Path(tmp) / "regency")
        try:
            await asyncio.to_thread(regency.start)
            for section in sections:
                say(section.title)
                try:
                    rows = tidy(await modules[section.name].measure(quick, regency), section)
                except Exception as exc:
                    rows = [unavailable(section.name, f"failed: {type(exc).__name__}: {exc}"[:500])]
                with out.open("a") as file:
                    file.write(json.dumps({"section": section.name, "rows": rows}) + "\n")
        finally:
            say("stopping the regency")
            await asyncio.to_thread(regency.stop)


def child(names: list[str], quick: bool, out: Path) -> None:
    """A section process: measure ``names`` and append their rows to ``out``."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (stop the regency) first
    sections = [BY_NAME[n] for n in names]
    if all(s.regency for s in sections):
        asyncio.run(run_regency_sections(sections, quick, out))
        return
    [section] = sections
    rows = asyncio.run(run_script(section, quick))
    with out.open("a") as file:
        file.write(json.dumps({"section": section.name, "rows": rows}) + "\n")


# --------------------------------------------------------------------------------------------
# the harness


class Display:
    """What the harness shows while it runs: rich's progress display on a terminal, or a plain
    line per step on stderr (``--json``, or output that is not a terminal)."""

    def __init__(self, total: int, live: bool) -> None:
        self.live = live
        self.progress: Any = None
        if live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[section]:<9}"),
                BarColumn(bar_width=20),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.progress.start()
        self.total = total
        self.tasks: dict[str, Any] = {}
        self.started: dict[str, float] = {}
        self.said: dict[str, str] = {}

    def begin(self, name: str, text: str) -> None:
        self.started[name] = time.monotonic()
        self.said[name] = text
        if self.progress is not None:
            self.tasks[name] = self.progress.add_task(text, total=1, section=name)
        else:
            print(f"bench: {name}: {text}", file=sys.stderr, flush=True)

    def update(self, name: str, text: str) -> None:
        if self.progress is not None:
            self.progress.update(self.tasks[name], description=text)
        elif self.said.get(name) != text:
            print(f"bench: {name}: {text}", file=sys.stderr, flush=True)
        self.said[name] = text

    def end(self, name: str, text: str = "done") -> None:
        text = f"{text} ({time.monotonic() - self.started.get(name, time.monotonic()):.0f}s)"
        if self.progress is not None:
            self.progress.update(self.tasks[name], description=text, completed=1)
        else:
            print(f"bench: {name}: {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


async def run_child(
    names: list[str], quick: bool, timeout: float, logs: Path, display: Display
) -> list[tuple[str, list[Figure]]]:
    """Run ``names`` in a section process; their rows, in order."""
    out = logs / f"{names[0]}.rows"
    log = logs / f"{names[0]}.log"
    out.unlink(missing_ok=True)
    command = [sys.executable, str(BENCH / "run.py"), "--child", ",".join(names), "--out", str(out)]
    process = await asyncio.create_subprocess_exec(
        *command, *(["--quick"] if quick else []),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=BENCH.parent, start_new_session=True,
    )  # fmt: skip
    assert process.stdout is not None
    current = {"name": names[0]}
    reported: set[str] = set()

    async def follow() -> None:
        assert process.stdout is not None
        with log.open("w") as file:
            while line := await process.stdout.readline():
                text = line.decode(errors="replace")
                file.write(text)
                file.flush()
                if text.startswith(PROGRESS):
                    words = text[len(PROGRESS) :].strip()
                    step = next((n for n in names if BY_NAME[n].title == words), None)
                    if step is not None and step != current["name"]:
                        display.end(current["name"])
                        current["name"] = step
                        display.begin(step, words)
                    display.update(current["name"], words)

    follower = asyncio.create_task(follow())
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        display.update(current["name"], f"no end after {timeout:g}s: stopping it")
        _signal_group(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 90)
        except TimeoutError:
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
    await asyncio.wait([follower], timeout=5)
    display.end(current["name"], "done" if process.returncode == 0 else f"exit {process.returncode}")
    results: list[tuple[str, list[Figure]]] = []
    if out.exists():
        for line in out.read_text().splitlines():
            done = json.loads(line)
            results.append((done["section"], done["rows"]))
            reported.add(done["section"])
    tail = _last_line(log)
    for name in names:
        if name not in reported:
            why = f"failed (exit {process.returncode}): {tail}; log {log}"
            results.append((name, [unavailable(name, why)]))
    return results


def _signal_group(pid: int, sig: signal.Signals) -> None:
    """Signal the section process we started (its own session, so its children too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _last_line(log: Path) -> str:
    lines = (
        [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
        if log.exists()
        else []
    )
    return lines[-1][:300] if lines else "no output"


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown",
    )  # fmt: skip
    memory = next(
        (int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
         if line.startswith("MemTotal:")),
        0,
    )  # fmt: skip
    try:
        from pulih.kit.nats_server import nats_server_binary

        version = subprocess.run(
            [nats_server_binary(), "--version"], capture_output=True, text=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        version = "unknown"
    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{memory / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "nats-server": version,
        "load average": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def groups(names: list[str]) -> list[list[str]]:
    """The section processes to run: the regency sections together, every other one alone."""
    together = [n for n in names if BY_NAME[n].regency]
    alone = [[n] for n in names if not BY_NAME[n].regency]
    return alone + ([together] if together else [])


async def harness(names: list[str], quick: bool, timeout: float, logs: Path, live: bool) -> list[Figure]:
    """Run the sections; every row, judged against the targets, in section order."""
    display = Display(len(names), live)
    by_section: dict[str, list[Figure]] = {}
    try:
        for group in groups(names):
            display.begin(group[0], BY_NAME[group[0]].title)
            for name, rows in await run_child(group, quick, timeout, logs, display):
                by_section[name] = rows
    finally:
        display.close()
    return [judged(row) | {"section": name} for name in names for row in by_section.get(name, [])]


def table(rows: list[Figure], about: dict[str, str], logs: Path) -> None:
    """The figures as a rich table on stdout, the machine above it."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not console.is_terminal:  # a file or a pipe: wide enough for the metrics' names
        console = Console(width=150)
    console.print("  ".join(f"[bold]{k}[/] {v}" for k, v in about.items()))
    grid = Table(show_lines=False)
    for column, justify in (
        ("metric", "left"), ("value", "right"), ("unit", "left"), ("limit", "right"),
        ("ratio", "right"), ("target", "left"), ("met?", "center"),
    ):  # fmt: skip
        grid.add_column(column, justify=justify, no_wrap=column == "metric")  # type: ignore[arg-type]
    section = None
    for row in rows:
        if row["section"] != section:
            section = row["section"]
            grid.add_section()
        met = {True: "[green]yes[/]", False: "[red]NO[/]", None: ""}[row.get("met")]
        grid.add_row(
            row["metric"],
            "—" if row["value"] is None else f"{row['value']:,}",
            row.get("unit") or "",
            "" if row["limit"] is None else f"{row['limit']:,}",
            "" if row["ratio"] is None else f"{row['ratio']:.2f}",
            row.get("target") or "",
            met,
        )
    console.print(grid)
    for row in rows:
        if row.get("note"):
            style = "yellow" if row["value"] is None else "dim"
            console.print(Text(f"{row['metric']}: {row['note']}", style=style))
    console.print(f"logs: {logs}")


def markdown(rows: list[Figure], about: dict[str, str]) -> None:
    """The figures as a Markdown table (for bench/README.md), the machine above it."""
    print(", ".join(f"{k}: {v}" for k, v in about.items()))
    print()
    print("| metric | value | unit | limit | ratio | target | met? |")
    print("| --- | ---: | --- | ---: | ---: | --- | :---: |")
    for row in rows:
        value = "—" if row["value"] is None else f"{row['value']:,}"
        limit = "" if row["limit"] is None else f"{row['limit']:,}"
        ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
        met = {True: "yes", False: "**no**", None: ""}[row.get("met")]
        cells = (
            f"`{row['metric']}`",
            value,
            row.get("unit") or "",
            limit,
            ratio,
            row.get("target") or "",
            met,
        )
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="JSON lines on stdout, and nothing else")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table (for bench/README.md)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test of the harness")
    parser.add_argument(
        "--only", help=f"comma-separated sections, of: {', '.join(BY_NAME)} (default: all)", default=""
    )
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before a section is stopped")
    parser.add_argument("--logs", type=Path, help="where each section's output goes (default: a temp dir)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child.split(","), args.quick, args.out)
        return
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"no section {', '.join(unknown)}; the sections: {', '.join(BY_NAME)}")
    names = [n for n in BY_NAME if n in names]
    logs = args.logs or Path(tempfile.mkdtemp(prefix="pulih-bench-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    about = machine()
    busy = os.getloadavg()[0] > 0.5 * (os.cpu_count() or 1)
    warning = f"the machine is busy (load {about['load average']}): figures will not be representative"
    if args.json:
        real_stdout = os.fdopen(os.dup(1), "w")
        os.dup2(2, 1)  # whatever else writes to stdout (a section's prints) goes to stderr
        print(json.dumps({"machine": about}), file=sys.stderr)
        if busy:
            print(f"bench: {warning}", file=sys.stderr)
        rows = asyncio.run(harness(names, args.quick, args.timeout, logs, live=False))
        for row in rows:
            real_stdout.write(json.dumps(row) + "\n")
        real_stdout.flush()
        return
    if busy:
        print(f"warning: {warning}", file=sys.stderr)
    rows = asyncio.run(harness(names, args.quick, args.timeout, logs, live=sys.stderr.isatty()))
    if args.markdown:
        markdown(rows, about)
        (logs / "figures.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        return
    table(rows, about, logs)
    (logs / "figures.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


if __name__ == "__main__":
    main()
