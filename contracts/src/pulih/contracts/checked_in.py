"""Files generated from the code and checked in: the event schemas (``contracts/schemas``, by
:mod:`pulih.contracts.schemas`) and the AsyncAPI documents (``contracts/asyncapi``, by
:mod:`pulih.kit.asyncapi`).

Both generators write a directory so it holds exactly what the code renders, say how a directory
drifted from it (a file missing, extra or different), and share one command line:
``--write DIR`` regenerates, ``--check DIR`` exits 1 on any drift and names the command that
regenerates.
"""

import argparse
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def _any_json(name: str) -> bool:
    return True


def write_files(
    directory: Path, files: Mapping[str, str], owns: Callable[[str], bool] = _any_json
) -> list[Path]:
    """Make ``directory`` hold exactly ``files`` (file name to text); returns the files written.

    A ``*.json`` file there that is not one of ``files`` is removed when ``owns`` its name (by
    default every one); nothing else is touched.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.json"):
        if owns(stale.name) and stale.name not in files:
            stale.unlink()
    written = []
    for name, text in sorted(files.items()):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def drift(directory: Path, files: Mapping[str, str]) -> list[str]:
    """What differs between the ``*.json`` files of ``directory`` and ``files``, one line each
    (``missing: …``, ``extra: …``, ``drifted: …``); [] if none."""
    present = {path.name for path in directory.glob("*.json")} if directory.is_dir() else set()
    problems = [f"missing: {name}" for name in sorted(files.keys() - present)]
    problems += [f"extra: {name}" for name in sorted(present - files.keys())]
    problems += [
        f"drifted: {name}"
        for name in sorted(files.keys() & present)
        if (directory / name).read_text(encoding="utf-8") != files[name]
    ]
    return problems


def command_line(
    argv: Sequence[str] | None,
    *,
    prog: str,
    description: str,
    what: str,
    write_command: str,
    render: Callable[[], Mapping[str, str]],
    owns: Callable[[str], bool] = _any_json,
) -> int:
    """A generator's command line: ``--write DIR`` regenerates, ``--check DIR`` exits 1 on any
    drift. ``what`` names the files in its messages (``"schemas"``), ``render`` makes them (file
    name to text), ``owns`` is as :func:`write_files` reads it."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", metavar="DIR", type=Path, help=f"write the {what} to DIR")
    action.add_argument("--check", metavar="DIR", type=Path, help=f"compare DIR with the {what}")
    args = parser.parse_args(argv)
    files = render()
    if args.write is not None:
        written = write_files(args.write, files, owns)
        print(f"wrote {len(written)} {what} to {args.write}")
        return 0
    problems = drift(args.check, files)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{what} in {args.check} are out of date: run {write_command}", file=sys.stderr)
        return 1
    print(f"{args.check}: {len(files)} {what} up to date")
    return 0
