"""Mutation testing of the kit's delivery guarantees, scoped so it fits a small machine.

    .venv/bin/python tests/mutate_kit.py outbox inbox idempotency consumers [--list] [--only N,M]

``outbox``, ``inbox`` and ``idempotency`` are modules: one mutant at a time of the whole module
(comparisons, boolean operators, ``not``, numbers and booleans, arithmetic, a deleted ``await``
statement, a returned value, two neighbouring statements swapped), inside function bodies only,
log calls and docstrings left alone. ``consumers`` is the ordered batch consumption
(``batch_consumer.py``, ``batch_apply.py``, ``batch_handlers.py``): its ~1,250 lines give too
many mechanical mutants for a 2-core machine, so its mutants are written by hand
(``GUARANTEES``), each breaking one promise of those modules' docstrings; each names the text it
replaces, and a mutant whose text is not found exactly once in today's module stops the run
(``--list`` says ``DOES NOT APPLY``) instead of being counted as killed.

Mutants are written into a COPY of ``kit/src`` under a temporary directory that is put first on
``PYTHONPATH`` (then this checkout's ``contracts/src`` and ``services/*/src``): the work tree is
never changed, so it can run while others run tests or edit the kit, and Ctrl-C, SIGTERM or a
timeout leave nothing behind but the temporary copy's removal (each mutant's pytest runs in a
process group of its own, stopped with SIGINT so its fixtures stop their nats-servers, then
killed with whatever it started). The copy is taken from the
checkout this file is in; run it from a ``git worktree`` of a commit to test that commit while
the main work tree has uncommitted edits. Each mutant runs its scope's tests (``SCOPES``) with
``-x``; a mutant the tests pass is a survivor and is printed with its diff.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import copy
import difflib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / "kit" / "src" / "pulih" / "kit"
PYTEST = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not postgres"]

SCOPES: dict[str, list[str]] = {
    "outbox": [
        "kit/tests/test_outbox_relay.py",
        "kit/tests/test_unit_of_work.py",
        "tests/test_relay_faults.py",
        "tests/test_outreach_events.py",
    ],
    "inbox": ["tests/test_inbox_invariants.py", "tests/test_consumer_delivery.py"],
    "idempotency": [
        "kit/tests/test_idempotency.py",
        "services/outreach/tests/test_api.py",
        "-k",
        "idempotency",
    ],
    "consumers": [  # fastest first: -x stops at the first failure
        "kit/tests/test_batch_consumer.py",
        "tests/test_batch_guarantees.py",
        "tests/test_batch_consumption_handlers.py",
        "tests/test_batch_consumption.py",
        "tests/test_consumer_delivery.py",
        "tests/test_batch_consumption_store_faults.py",
        "tests/test_consumer_pause.py",
        "tests/test_consumer_store_faults.py",
        "tests/test_consumer_handler_timeout.py",
    ],
}
"""Each scope's own tests (named files, so a test file someone is writing elsewhere cannot
fail every mutant); ``--tests`` replaces them, e.g. to count survivors of older tests. The
``consumers`` scope leaves out ``tests/test_batch_consumption_crash.py`` (a kill -9 of a
subprocess, ~1 min a case): pass it with ``--tests`` for the mutants only a crash can kill."""


@dataclass(frozen=True)
class Guarantee:
    """A hand-written mutant: in ``module``, ``old`` (found exactly once) becomes ``new``."""

    module: str
    promise: str
    old: str
    new: str


GUARANTEES: list[Guarantee] = [
    # ack only after the commit
    Guarantee(
        "batch_handlers",
        "ack after commit: a handlers batch is acked before its transaction",
        "                    failed = await self._commit_handlers(pending)",
        "                    for message, _ in pending:\n"
        "                        await message.ack()\n"
        "                    failed = await self._commit_handlers(pending)",
    ),
    Guarantee(
        "batch_apply",
        "ack after commit: an apply batch is acked before apply runs",
        "            try:\n                await self._apply_in_order(await self._read(messages))",
        "            try:\n"
        "                for message in messages:\n"
        "                    await message.ack()\n"
        "                await self._apply_in_order(await self._read(messages))",
    ),
    Guarantee(
        "batch_handlers",
        "ack after commit: an event set aside is acked with the committed ones",
        "                        if index not in failed and not message.is_acked:",
        "                        if not message.is_acked:",
    ),
    # the inbox skips a redelivered event
    Guarantee(
        "batch_apply",
        "inbox: what the inbox holds is not left out",
        "        seen.update(found)",
        "        pass",
    ),
    Guarantee(
        "batch_apply",
        "inbox: a second copy inside one batch counts twice",
        "            seen.add(item.event.id)",
        "            pass",
    ),
    Guarantee(
        "batch_apply",
        "inbox: apply gets the whole batch, the inbox unasked",
        "            fresh = await unapplied(uow.session, self.name, received)",
        "            fresh = list(received)",
    ),
    Guarantee(
        "batch_apply",
        "inbox: an apply batch's events are not recorded",
        "                await record_batch(uow.session, self.name, fresh)",
        "                pass",
    ),
    Guarantee(
        "batch_handlers",
        "inbox: a handler gets an event its inbox holds",
        "                if id(received) not in fresh:\n                    continue",
        "                pass",
    ),
    Guarantee(
        "batch_handlers",
        "inbox: a handlers batch's events are not recorded",
        "                await record_batch(session, self.name, applied)",
        "                pass",
    ),
    # savepoint set-aside of a failing event
    Guarantee(
        "batch_handlers",
        "savepoint: no savepoint around a handler (its partial writes commit)",
        "                            async with session.begin_nested():\n"
        "                                await handler(uow, event, delivery)",
        "                            await handler(uow, event, delivery)",
    ),
    Guarantee(
        "batch_handlers",
        "savepoint: an event whose handler failed is recorded in the inbox as applied",
        "                            failed[index] = exc\n                            continue",
        "                            failed[index] = exc",
    ),
    Guarantee(
        "batch_handlers",
        "savepoint: the event at fault is not set aside",
        "                set_aside[at] = exc",
        "                pass",
    ),
    Guarantee(
        "batch_handlers",
        "savepoint: on SQLite no BEGIN before the first savepoint",
        "    if not is_sqlite:\n        return",
        "    if is_sqlite:\n        return",
    ),
    # NotReadyYet: retried in hand (apply) or given back with a delay (handlers)
    Guarantee(
        "batch_apply",
        "not ready: retried in hand sooner than ack_wait",
        "                delay = max(retry_delay(attempt, self.retry_base_seconds), "
        "self.settings.ack_wait_seconds)",
        "                delay = retry_delay(attempt, self.retry_base_seconds)",
    ),
    Guarantee(
        "batch_apply",
        "not ready: an attempt in hand is not counted (never dead-lettered)",
        "            attempt += 1",
        "            pass",
    ),
    Guarantee(
        "batch_apply",
        "not ready: the event settled in hand is applied again with the rest",
        "                    held = held[index + 1 :]",
        "                    held = held[index:]",
    ),
    Guarantee(
        "batch_apply",
        "not ready: a batch's NotReadyYet is taken for an unknown error (equivalent)",
        "            except (Rejected, PulihError, NotReadyYet):",
        "            except (Rejected, PulihError):",
    ),
    Guarantee(
        "batch_apply",
        "not ready: a failing store spends the attempts of an event in hand",
        "                if not await self._store_commits():\n"
        "                    self._pause(exc)  # the store, not the event: spend no attempt",
        "                if False:\n"
        "                    self._pause(exc)  # the store, not the event: spend no attempt",
    ),
    Guarantee(
        "batch_handlers",
        "not ready: given back at once, not after ack_wait",
        "                await message.nak(delay=delay)",
        "                await message.nak()",
    ),
    Guarantee(
        "batch_handlers",
        "not ready: spends attempts while a sibling consumer is paused",
        "                if self.runtime.paused_consumers:\n                    kept.append(item)",
        "                if False:\n                    kept.append(item)",
    ),
    Guarantee(
        "batch_handlers",
        "not ready: spends attempts while the store cannot commit",
        "                if not await probe.commits():\n"
        "                    self._pause(exc)  # the store, not the event: spend no attempt",
        "                if False:\n"
        "                    self._pause(exc)  # the store, not the event: spend no attempt",
    ),
    # dead letters
    Guarantee(
        "batch_apply",
        "dead letter: an invalid message is acked without a dead letter",
        '                await self._dead_letter(message, attempt, "invalid_event", exc.reason)',
        "                pass",
    ),
    Guarantee(
        "batch_apply",
        "dead letter: a message with an identity key is not erased from the stream",
        "                    await erase(self.broker, self.stream, delivery)",
        "                    pass",
    ),
    Guarantee(
        "batch_handlers",
        "dead letter: a domain error (PulihError) is retried, not dead-lettered at once",
        "            if isinstance(exc, (Rejected, PulihError)):",
        "            if isinstance(exc, Rejected):",
    ),
    # order: one batch in hand
    Guarantee(
        "batch_consumer",
        "order: a new durable takes more than one batch in hand",
        "                max_ack_pending=self.batch_size,\n            )\n            await js.add_consumer",
        "                max_ack_pending=self.batch_size + 1,\n"
        "            )\n            await js.add_consumer",
    ),
    Guarantee(
        "batch_consumer",
        "order: an old durable keeps its max_ack_pending",
        "        if (current.ack_wait, current.max_deliver, current.max_ack_pending) != (",
        "        if (current.ack_wait, current.max_deliver, self.batch_size) != (",
    ),
    # a store fault pauses and spends no attempt
    Guarantee(
        "batch_apply",
        "store fault: an apply batch's unknown error is not checked against the store (harmless)",
        "                if is_store_fault(exc) or not await self._store_commits():\n"
        "                    await self._wait_for_store(exc, round_)\n"
        "                    continue\n"
        "                log.warning(",
        "                if is_store_fault(exc):\n"
        "                    await self._wait_for_store(exc, round_)\n"
        "                    continue\n"
        "                log.warning(",
    ),
    Guarantee(
        "batch_apply",
        "store fault: one failing probe, then the batch itself is tried again (harmless)",
        "        while not await self._store_commits():",
        "        if not await self._store_commits():",
    ),
    Guarantee(
        "batch_apply",
        "store fault: the consumer is not said to be paused",
        "            self.runtime.paused_consumers.add(self.name)",
        "            pass",
    ),
    Guarantee(
        "batch_handlers",
        "store fault: a store error in a handler sets its event aside",
        "                if at is None or is_store_fault(exc) or (savepoints",
        "                if at is None or (savepoints",
    ),
    Guarantee(
        "batch_handlers",
        "store fault: an unknown error is the handler's without probing the store",
        "                if not isinstance(exc, _KNOWN_FAULTS) and not await self._store_commits():",
        "                if False:",
    ),
    Guarantee(
        "batch_handlers",
        "store fault: a store error under a savepoint is the event's",
        "                            if is_store_fault(exc):\n"
        "                                raise _StoreFailing(exc) from exc",
        "                            pass",
    ),
    Guarantee(
        "batch_handlers",
        "store fault: an event set aside spends an attempt while the store cannot commit",
        "            if is_store_fault(exc) or not await probe.commits():",
        "            if is_store_fault(exc):",
    ),
    Guarantee(
        "batch_handlers",
        "store fault: in-progress acks come after ack_wait, not within it",
        "        async with still_working(messages, self.settings.ack_wait_seconds / 3):",
        "        async with still_working(messages, self.settings.ack_wait_seconds * 3):",
    ),
]
"""The ``consumers`` scope: the batch consumer's promises (their docstrings), one broken at a
time."""

_COMPARE_SWAP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Lt: ast.GtE,
    ast.GtE: ast.Lt,
    ast.Gt: ast.LtE,
    ast.LtE: ast.Gt,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}
_BINOP_SWAP: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.Pow: ast.Mult,
}


@dataclass(frozen=True)
class Mutant:
    number: int
    line: int
    what: str
    source: str


def _is_log_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and isinstance(node.value.func.value, ast.Name)
        and node.value.func.value.id == "log"
    )


def _is_docstring(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    )


def _returns_none(node: ast.Return) -> bool:
    return node.value is None or (isinstance(node.value, ast.Constant) and node.value.value is None)


def _points(tree: ast.Module) -> Iterator[tuple[ast.AST, str]]:
    """(node, kind) of every place to mutate: inside functions, outside log calls and docstrings."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if _is_log_call(node) or _is_docstring(node):
            skip.update(id(n) for n in ast.walk(node))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for part in [*node.args.args, *node.args.kwonlyargs, node.returns, *node.decorator_list]:
                if part is not None:
                    skip.update(id(n) for n in ast.walk(part))
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                if default is not None:  # defaults are mutated: they are behaviour
                    skip.difference_update(id(n) for n in ast.walk(default))
    seen: set[int] = set()  # a nested function is inside its outer one: mutate it once
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if id(node) in skip or node is fn or id(node) in seen:
                continue
            seen.add(id(node))
            if isinstance(node, ast.Compare) and type(node.ops[0]) in _COMPARE_SWAP:
                yield node, "compare"
            elif isinstance(node, ast.BoolOp):
                yield node, "boolop"
            elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
                yield node, "not"
            elif isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float)):
                yield node, "constant"
            elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAP:
                yield node, "binop"
            elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Await):
                yield node, "delete_await"
            elif isinstance(node, ast.Return) and not _returns_none(node):
                yield node, "return"
            if isinstance(node, (ast.For, ast.AsyncFor, ast.Try, ast.With, ast.AsyncWith)):
                for i in range(len(node.body) - 1):
                    yield node, f"swap:{i}"


def _mutate(node: ast.AST, kind: str) -> str:
    """Mutate ``node`` in place; return what was done."""
    if kind == "compare":
        assert isinstance(node, ast.Compare)
        old = type(node.ops[0])
        node.ops[0] = _COMPARE_SWAP[old]()
        return f"{old.__name__} -> {type(node.ops[0]).__name__}"
    if kind == "boolop":
        assert isinstance(node, ast.BoolOp)
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        return "and <-> or"
    if kind == "constant":
        assert isinstance(node, ast.Constant)
        old_value = node.value
        if isinstance(old_value, bool):
            node.value = not old_value
        elif isinstance(old_value, int):
            node.value = old_value + 1
        else:
            node.value = old_value * 2 + 1
        return f"{old_value!r} -> {node.value!r}"
    if kind == "binop":
        assert isinstance(node, ast.BinOp)
        old_op = type(node.op)
        node.op = _BINOP_SWAP[old_op]()
        return f"{old_op.__name__} -> {type(node.op).__name__}"
    if kind == "return":
        assert isinstance(node, ast.Return)
        node.value = ast.Constant(None)
        return "return None"
    if kind.startswith("swap:"):
        i = int(kind.split(":")[1])
        body = node.body  # type: ignore[attr-defined]
        body[i], body[i + 1] = body[i + 1], body[i]
        return f"swap statements {i} and {i + 1} of the block"
    raise AssertionError(kind)


def mutants(module: str) -> list[Mutant]:
    source = (KIT / f"{module}.py").read_text()
    tree = ast.parse(source)
    found: list[Mutant] = []
    for n, (node, kind) in enumerate(list(_points(tree))):
        clone = copy.deepcopy(tree)
        target = [x for x, k in _points(clone)][n]
        if kind in {"not", "delete_await"}:
            what = "drop not" if kind == "not" else "delete statement"
            replacement: ast.AST = target.operand if kind == "not" else ast.Pass()  # type: ignore[attr-defined]
            _replace(clone, target, replacement)
        else:
            what = _mutate(target, kind)
        found.append(Mutant(len(found) + 1, getattr(node, "lineno", 0), what, ast.unparse(clone)))
    return found


def guarantee_mutants() -> list[tuple[Mutant, str, str]]:
    """(mutant, module, its source) of each of ``GUARANTEES``; ``ValueError`` naming those whose
    text is not found exactly once (the module changed: write them again)."""
    found, stale = [], []
    for n, g in enumerate(GUARANTEES, start=1):
        source = (KIT / f"{g.module}.py").read_text()
        if source.count(g.old) != 1:
            stale.append(f"#{n} {g.module}: {g.promise} ({source.count(g.old)} matches)")
            continue
        line = source[: source.index(g.old)].count("\n") + 1
        compile(source.replace(g.old, g.new), g.module, "exec")  # a mutant that is valid Python
        found.append(
            (Mutant(n, line, f"{g.module}: {g.promise}", source.replace(g.old, g.new)), g.module, source)
        )
    if stale:
        raise ValueError("mutants that do not apply:\n  " + "\n  ".join(stale))
    return found


def _pytest(args: list[str], env: dict[str, str], timeout: float | None) -> int:
    """Run pytest in a process group of its own and kill the whole group (the nats-servers its
    tests start) if it times out or this run is interrupted."""
    with subprocess.Popen(
        [*PYTEST, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            out, _ = process.communicate(timeout=timeout)
        except BaseException:
            _stop(process)
            raise
    _pytest.last_output = out  # type: ignore[attr-defined]
    return process.returncode


def _stop(process: subprocess.Popen[str]) -> None:
    """Stop a pytest run and everything it started. Its nats-servers run in sessions of their own
    (``start_new_session``), out of reach of its process group: SIGINT lets pytest stop them in
    its fixtures' teardown; what is left after 10 s, in its group or among its descendants (as
    they were when it was asked), is killed."""
    descendants = _descendants(process.pid)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.communicate(timeout=10)
    for pid in descendants:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.communicate()


def _descendants(pid: int) -> list[int]:
    """The processes under ``pid`` now (Linux ``/proc``; none elsewhere)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _replace(tree: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for parent in ast.walk(tree):
        for field, value in ast.iter_fields(parent):
            if value is old:
                setattr(parent, field, ast.copy_location(new, old))
                return
            if isinstance(value, list) and any(v is old for v in value):
                value[next(i for i, v in enumerate(value) if v is old)] = ast.copy_location(new, old)
                return
    raise AssertionError("node not found")


def _environment(work: Path) -> dict[str, str]:
    sources = [work, ROOT / "contracts" / "src", *sorted((ROOT / "services").glob("*/src"))]
    path = os.pathsep.join([*map(str, sources), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONDONTWRITEBYTECODE": "1"}


def run(scope_name: str, only: set[int] | None, timeout: float, tests: list[str] | None = None) -> int:
    work = Path(tempfile.mkdtemp(prefix="pulih-mutate-"))
    target = work / "pulih" / "kit"
    shutil.copytree(KIT, target, ignore=shutil.ignore_patterns("__pycache__"))
    env = _environment(work)
    scope = tests or SCOPES[scope_name]
    survivors = 0
    try:
        if scope_name == "consumers":
            todo = guarantee_mutants()
            clean = {module: source for _, module, source in todo}
        else:
            original = (KIT / f"{scope_name}.py").read_text()
            clean = {scope_name: ast.unparse(ast.parse(original))}
            todo = [(m, scope_name, clean[scope_name]) for m in mutants(scope_name)]
        for module, source in clean.items():
            (target / f"{module}.py").write_text(source)
        if _pytest(scope, env, None) != 0:
            print(_pytest.last_output[-3000:])  # type: ignore[attr-defined]
            raise SystemExit(f"{scope_name}: the tests fail without a mutant; fix that first")
        print(f"== {scope_name}: {len(todo)} mutants; tests {' '.join(scope)}", flush=True)
        for m, module, source in todo:
            if only is not None and m.number not in only:
                continue
            (target / f"{module}.py").write_text(m.source)
            started = time.monotonic()
            try:
                code = _pytest(scope, env, timeout)
                killed = code != 0
                # 1: a test failed; anything else (collection error, interrupted) is no verdict
                how = "SURVIVED" if not killed else "killed" if code == 1 else f"ERROR ({code})"
            except subprocess.TimeoutExpired:
                killed, how = True, "killed (timeout)"
            finally:
                (target / f"{module}.py").write_text(source)
            took = time.monotonic() - started
            by = ""
            if how == "killed":  # the test that failed first (pytest -q's summary line)
                failed = [x for x in _pytest.last_output.splitlines() if x.startswith("FAILED ")]  # type: ignore[attr-defined]
                by = f" by {failed[0].split()[1]}" if failed else ""
            print(f"{scope_name} #{m.number} line {m.line} {m.what}: {how}{by} ({took:.0f}s)", flush=True)
            if not killed:
                survivors += 1
                diff = difflib.unified_diff(source.splitlines(), m.source.splitlines(), lineterm="", n=1)
                print("\n".join(list(diff)[2:]), flush=True)
        print(f"== {scope_name}: {survivors} survivors", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="+", choices=sorted(SCOPES))
    parser.add_argument("--only", help="comma-separated mutant numbers")
    parser.add_argument("--list", action="store_true", help="list the mutants and stop")
    parser.add_argument("--tests", help="space-separated pytest arguments instead of the module's own")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups, as Ctrl-C does
    if args.list:
        for module in args.modules:
            if module == "consumers":
                for n, g in enumerate(GUARANTEES, start=1):
                    count = (KIT / f"{g.module}.py").read_text().count(g.old)
                    state = "" if count == 1 else f"  DOES NOT APPLY ({count} matches)"
                    print(f"consumers #{n} {g.module}: {g.promise}{state}")
                continue
            for m in mutants(module):
                print(f"{module} #{m.number} line {m.line} {m.what}")
        return
    only = {int(n) for n in args.only.split(",")} if args.only else None
    tests = args.tests.split() if args.tests else None
    total = sum(run(module, only, args.timeout, tests) for module in args.modules)
    raise SystemExit(1 if total else 0)


if __name__ == "__main__":
    main()
