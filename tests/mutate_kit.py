"""Mutation testing of the kit's delivery guarantees, scoped so it fits a small machine.

    .venv/bin/python tests/mutate_kit.py outbox inbox idempotency consumers [--list] [--only N,M]

For each module it makes one mutant at a time (comparisons, boolean operators, ``not``, numbers
and booleans, arithmetic, a deleted ``await`` statement, a returned value, two neighbouring
statements swapped), inside function bodies only, log calls and docstrings left alone. Mutants
are written into a COPY of ``kit/src`` under a temporary directory that is put first on
``PYTHONPATH``: the work tree is never changed, so it can run while others run tests. Each
mutant runs the module's own tests (``SCOPES``) with ``-x``; a mutant the tests pass is a
survivor and is printed with its diff.
"""

from __future__ import annotations

import argparse
import ast
import copy
import difflib
import os
import shutil
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
    "consumers": [
        "tests/test_consumer_delivery.py",
        "tests/test_consumer_store_faults.py",
        "tests/test_consumer_pause.py",
        "tests/test_consumer_handler_timeout.py",
        "tests/test_dead_letter_chain.py",
        "tests/test_durable_refresh.py",
        "kit/tests/test_store_fault_rules.py",
        "tests/test_referral_clinic_loop.py::test_an_answer_carrying_a_nik_is_told_to_its_clinic_and_erased_from_the_stream",
    ],
}
"""Each module's own tests (named files, so a test file someone is writing elsewhere cannot
fail every mutant); ``--tests`` replaces them, e.g. to count survivors of older tests."""

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


def run(module: str, only: set[int] | None, timeout: float, tests: list[str] | None = None) -> int:
    work = Path(tempfile.mkdtemp(prefix="pulih-mutate-"))
    target = work / "pulih" / "kit"
    shutil.copytree(KIT, target, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": f"{work}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    scope = tests or SCOPES[module]
    original = (KIT / f"{module}.py").read_text()
    clean = ast.unparse(ast.parse(original))
    survivors = 0
    try:
        (target / f"{module}.py").write_text(clean)
        base = subprocess.run([*PYTEST, *scope], cwd=ROOT, env=env, capture_output=True, text=True)
        if base.returncode != 0:
            print(base.stdout[-3000:])
            raise SystemExit(f"{module}: the tests fail without a mutant; fix that first")
        all_mutants = mutants(module)
        print(f"== {module}: {len(all_mutants)} mutants; tests {' '.join(scope)}", flush=True)
        for m in all_mutants:
            if only is not None and m.number not in only:
                continue
            (target / f"{module}.py").write_text(m.source)
            started = time.monotonic()
            try:
                result = subprocess.run(
                    [*PYTEST, *scope],
                    cwd=ROOT,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
                killed = result.returncode != 0
                # 1: a test failed; anything else (collection error, interrupted) is no verdict
                how = "SURVIVED" if not killed else "killed" if result.returncode == 1 else "ERROR"
            except subprocess.TimeoutExpired:
                killed, how = True, "killed (timeout)"
            took = time.monotonic() - started
            print(f"{module} #{m.number} line {m.line} {m.what}: {how} ({took:.0f}s)", flush=True)
            if not killed:
                survivors += 1
                diff = difflib.unified_diff(clean.splitlines(), m.source.splitlines(), lineterm="", n=1)
                print("\n".join(list(diff)[2:]), flush=True)
        print(f"== {module}: {survivors} survivors", flush=True)
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
    if args.list:
        for module in args.modules:
            for m in mutants(module):
                print(f"{module} #{m.number} line {m.line} {m.what}")
        return
    only = {int(n) for n in args.only.split(",")} if args.only else None
    tests = args.tests.split() if args.tests else None
    total = sum(run(module, only, args.timeout, tests) for module in args.modules)
    raise SystemExit(1 if total else 0)


if __name__ == "__main__":
    main()
