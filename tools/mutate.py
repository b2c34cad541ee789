"""Single-point mutation testing of vcheck modules against their fast tests (`nox -s mutation`).

Each mutant changes one place of one module's source (Python's `ast`, written back with `ast.unparse`):
arithmetic operators (+ -, * /, ** *), comparisons (< <=, > >=, == !=, is / is not, in / not in),
and / or, `not x` -> x, True <-> False, numeric constants (0 -> 1, c -> 2c + 1), a dropped call
statement (`rows.append(...)`, `out.extend(...)`), a dropped `return` value (-> `return None`) and an
`if` test forced true/false.  A mutant is killed when the module's fast tests fail (or hang past a time
limit) with it in place of the original.  Docstrings, strings and type annotations are never mutated.
A mutant first runs the tests that execute the statement it changes (mapped by one traced run of the
original, fastest first); only a mutant that survives those runs every other test too, so a survivor
has passed every test.

Mutants run in forked children of one process that has already imported vcheck and the tests; in the
child the mutant's code replaces the module's (and the names other modules imported from it), so the
files on disk never change.  The module swapped in unchanged must pass its tests first.

    python tools/mutate.py --out reports/mutation.md [--judged tools/mutation_judged.toml] [-j 2]
    python tools/mutate.py --module M --results M.jsonl [-j 2]      # one module, outcomes as they come
    python tools/mutate.py --module M --only KEY ... --results M.jsonl   # re-run chosen mutants
    python tools/mutate.py --report-from *.jsonl --out reports/mutation.md  # the report of those runs

`--judged` lists surviving mutants judged equivalent, each with its reason (keyed by module, line and
the mutant's description); the report counts them apart and gives every other survivor in full.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.abc
import importlib.util
import itertools
import json
import os
import signal
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: module -> the fast tests that guard it
TARGETS: dict[str, list[str]] = {
    "vcheck.auditing.classify": [
        "tests/auditing/test_verdicts.py",
        "tests/auditing/test_compare.py",
        "tests/auditing/test_classify_rows.py",
    ],
    "vcheck.auditing.measure": [
        "tests/auditing/test_verdicts.py",
        "tests/auditing/test_compare.py",
        "tests/auditing/test_measure_details.py",
    ],
    "vcheck.auditing.construction": [
        "tests/auditing/test_verdicts.py",
        "tests/auditing/test_compare.py",
        "tests/auditing/test_construction_details.py",
    ],
    "vcheck.auditing.differences": [
        "tests/auditing/test_verdicts.py",
        "tests/auditing/test_compare.py",
        "tests/auditing/test_differences.py",
    ],
    "vcheck.auditing.measurements": [
        "tests/auditing/test_verdicts.py",
        "tests/auditing/test_compare.py",
        "tests/auditing/test_measurements.py",
        "tests/auditing/test_measure_details.py",
    ],
    "vcheck.core.covariance": ["tests/core/test_covariance.py", "tests/core/test_covariance_weights.py"],
}
SWAP_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult, ast.Pow: ast.Mult}
SWAP_CMP = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass
class Mutant:
    module: str
    index: int
    line: int
    what: str
    source: str
    span: tuple[int, int] = (0, 0)  # the lines of the statement it changes (whose tests to run)

    @property
    def key(self) -> str:
        return f"{self.module}:{self.line}:{self.what}"


def _annotation_nodes(tree: ast.AST) -> set[int]:
    """ids of nodes inside annotations and docstrings (never mutated)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        ann = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            ann.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns is not None:
            ann.append(node.returns)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ann.append(first)
        for a in ann:
            skip.update(id(n) for n in ast.walk(a))
    return skip


def _sites(tree: ast.AST) -> Iterator[tuple[ast.AST, str, str]]:
    """(node, field/how, description) of every place a mutation applies."""
    skip = _annotation_nodes(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in SWAP_BIN:
            new = SWAP_BIN[type(node.op)].__name__
            yield node, "binop", f"{type(node.op).__name__} -> {new}"
        elif isinstance(node, ast.Compare):
            for i, op in enumerate(node.ops):
                if type(op) in SWAP_CMP:
                    yield node, f"cmp{i}", f"{type(op).__name__} -> {SWAP_CMP[type(op)].__name__}"
        elif isinstance(node, ast.BoolOp):
            yield (
                node,
                "boolop",
                f"{type(node.op).__name__} -> {'Or' if isinstance(node.op, ast.And) else 'And'}",
            )
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            yield node, "not", "not x -> x"
        elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
            yield node, "bool", f"{node.value} -> {not node.value}"
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, int | float)
            and not isinstance(node.value, bool)
        ):
            yield node, "num", f"{node.value!r} -> {_num(node.value)!r}"
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            yield node, "drop", f"drop {ast.unparse(node)[:60]}"
        elif isinstance(node, ast.Return) and node.value is not None and not _is_none(node.value):
            yield node, "return", f"return {ast.unparse(node.value)[:40]} -> return None"
        elif isinstance(node, ast.If):
            yield node, "if_true", f"if {ast.unparse(node.test)[:50]} -> if True"
            yield node, "if_false", f"if {ast.unparse(node.test)[:50]} -> if False"


def _is_none(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _num(v: float) -> float:
    return 1 if v == 0 else 2 * v + 1


def _apply(node: ast.AST, how: str) -> None:
    if how == "binop":
        node.op = SWAP_BIN[type(node.op)]()  # type: ignore[attr-defined]
    elif how.startswith("cmp"):
        i = int(how[3:])
        node.ops[i] = SWAP_CMP[type(node.ops[i])]()  # type: ignore[attr-defined]
    elif how == "boolop":
        node.op = ast.Or() if isinstance(node.op, ast.And) else ast.And()  # type: ignore[attr-defined]
    elif how == "bool":
        node.value = not node.value  # type: ignore[attr-defined]
    elif how == "num":
        node.value = _num(node.value)  # type: ignore[attr-defined]
    elif how == "return":
        node.value = ast.Constant(None)  # type: ignore[attr-defined]
    elif how == "if_true":
        node.test = ast.Constant(True)  # type: ignore[attr-defined]
    elif how == "if_false":
        node.test = ast.Constant(False)  # type: ignore[attr-defined]


class _Dropper(ast.NodeTransformer):
    def __init__(self, target: int) -> None:
        self.target = target

    def visit_Expr(self, node: ast.Expr) -> ast.AST:
        return ast.Pass() if id(node) == self.target else node


class _Negator(ast.NodeTransformer):
    def __init__(self, target: int) -> None:
        self.target = target

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        self.generic_visit(node)
        return node.operand if id(node) == self.target else node


def mutants(module: str) -> list[Mutant]:
    path = importlib.util.find_spec(module).origin  # type: ignore[union-attr]
    assert path is not None
    text = Path(path).read_text()
    base = ast.parse(text)
    parent = {id(c): n for n in ast.walk(base) for c in ast.iter_child_nodes(n)}
    out = []
    for k, (node, how, what) in enumerate(list(_sites(base))):
        stmt: ast.AST = node
        while not isinstance(stmt, ast.stmt) and id(stmt) in parent:
            stmt = parent[id(stmt)]
        span = (getattr(stmt, "lineno", 0), getattr(node, "end_lineno", None) or getattr(node, "lineno", 0))
        tree = ast.parse(text)
        twin = next(itertools.islice(_sites(tree), k, None))[0]
        if how == "drop":
            tree = _Dropper(id(twin)).visit(tree)
        elif how == "not":
            tree = _Negator(id(twin)).visit(tree)
        else:
            _apply(twin, how)
        ast.fix_missing_locations(tree)
        out.append(Mutant(module, k, getattr(node, "lineno", 0), what, ast.unparse(tree), span))
    return out


def _swap_in(mutant: Mutant) -> None:
    """Replace the loaded module's contents by the mutant's, and every name other loaded modules imported
    from it (`from module import name`) by the mutant's object of that name."""
    module = sys.modules[mutant.module]
    old = dict(module.__dict__)
    exec(compile(mutant.source, module.__file__ or mutant.module, "exec"), module.__dict__)
    swaps = {
        id(obj): module.__dict__[name]
        for name, obj in old.items()
        if not name.startswith("__") and name in module.__dict__ and module.__dict__[name] is not obj
    }
    for other in list(sys.modules.values()):
        if other is module or other is None:
            continue
        name = getattr(other, "__name__", "")
        if not (name.startswith("vcheck") or name.startswith("test") or name in ("faults", "conftest")):
            continue
        for attr, value in list(vars(other).items()):
            new = swaps.get(id(value))
            if new is not None:
                setattr(other, attr, new)


def tests_by_line(module: str, tests: list[str]) -> dict[int, list[str]]:
    """line of the module -> the tests (pytest node ids) that execute it, from one traced run of the
    original (`sys.settrace` on the module's file only; fixtures count for the test they run for);
    line 0 lists every test, fastest first."""
    path = str(importlib.util.find_spec(module).origin)  # type: ignore[union-attr]
    out_file = Path(f"/tmp/mutate-lines-{os.getpid()}.json")
    pid = os.fork()
    if pid == 0:  # child
        try:
            import threading

            import pytest

            hits: dict[int, set[str]] = {}
            current: list[str | None] = [None]

            def local(frame, event, arg):  # type: ignore[no-untyped-def]
                if event == "line" and current[0] is not None:
                    hits.setdefault(frame.f_lineno, set()).add(current[0])
                return local

            def anywhere(frame, event, arg):  # type: ignore[no-untyped-def]
                if frame.f_code.co_filename != path:
                    return None
                if current[0] is not None:
                    hits.setdefault(frame.f_lineno, set()).add(current[0])
                return local

            seconds: dict[str, float] = {}

            class Current:
                @pytest.hookimpl(hookwrapper=True)
                def pytest_runtest_protocol(self, item, nextitem):  # type: ignore[no-untyped-def]
                    current[0] = item.nodeid
                    start = time.monotonic()
                    yield
                    seconds[item.nodeid] = time.monotonic() - start
                    current[0] = None

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            sys.settrace(anywhere)
            threading.settrace(anywhere)
            code = pytest.main(
                [*tests, "-q", "-p", "no:cacheprovider", "-p", "no:faulthandler"], plugins=[Current()]
            )
            sys.settrace(None)
            # every test that ran is listed (under line 0) with its duration, fastest first
            order = sorted(seconds, key=seconds.__getitem__)
            out_file.write_text(json.dumps({"0": order, **{str(k): sorted(v) for k, v in hits.items()}}))
        except BaseException:
            code = 99
        os._exit(int(code))
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{module}: its tests fail under the line tracer")
    hits = {int(k): list(v) for k, v in json.loads(out_file.read_text()).items()}
    out_file.unlink()
    return hits


def chosen_tests(m: Mutant, hits: dict[int, list[str]] | None, tests: list[str]) -> list[str]:
    """The tests that execute the statement the mutant changes, fastest first; every test when none does
    (module-level code, run at import) or when no line map is used."""
    if hits is None:
        return tests
    ids = set().union(*(hits.get(line, []) for line in range(max(m.span[0], 1), m.span[1] + 1)))
    return [t for t in hits[0] if t in ids] if ids else tests


def other_tests(chosen: list[str], hits: dict[int, list[str]] | None, tests: list[str]) -> list[str]:
    """Every test but the chosen ones (they passed already), fastest first."""
    if hits is None or chosen == tests:
        return tests
    done = set(chosen)
    return [t for t in hits[0] if t not in done]


def _child(mutant: Mutant | None, tests: list[str]) -> int:
    """Fork a child that runs the tests with the mutant swapped in (None: the original); its pid."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            import pytest

            if mutant is not None:
                _swap_in(mutant)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            code = pytest.main([*tests, "-x", "-q", "-p", "no:cacheprovider", "-p", "no:faulthandler"])
        except BaseException:
            code = 99
        os._exit(int(code))
    return pid


def run_many(
    muts: list[Mutant],
    tests: list[str],
    limit: float,
    jobs: int = 1,
    hits: dict[int, list[str]] | None = None,
) -> Iterator[tuple[Mutant, str]]:
    """(mutant, "killed" | "survived" | "timeout") for each mutant, `jobs` children at a time, in the
    order they finish; a child still running after `limit` seconds is killed (the mutant hangs).
    With `hits` (tests_by_line) a mutant first runs only the tests that execute its statement; one that
    survives them runs again against every test, so only a full run can call it a survivor."""
    pending = [(m, chosen_tests(m, hits, tests), False) for m in muts]
    running: dict[int, tuple[Mutant, list[str], bool, float]] = {}
    while pending or running:
        while pending and len(running) < max(jobs, 1):
            m, chosen, last = pending.pop(0)
            running[_child(m, chosen)] = (m, chosen, last, time.monotonic())
        for pid, (m, chosen, last, start) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                del running[pid]
                rest = [] if last else other_tests(chosen, hits, tests)
                if os.waitstatus_to_exitcode(status) != 0:
                    yield m, "killed"
                elif rest and chosen != tests:
                    pending.insert(0, (m, rest, True))
                else:
                    yield m, "survived"
            elif time.monotonic() - start > limit:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                del running[pid]
                yield m, "timeout"
        time.sleep(0.02)


def run_one(mutant: Mutant | None, tests: list[str], limit: float) -> str:
    """ "killed", "survived" or "timeout" (killed by hanging); None runs the original (must pass)."""
    pid = _child(mutant, tests)
    start = time.monotonic()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return "survived" if os.waitstatus_to_exitcode(status) == 0 else "killed"
        if time.monotonic() - start > limit:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout"
        time.sleep(0.05)


def _preload(tests: list[str]) -> None:
    """Import vcheck, the test modules and their helpers once, before any fork (pytest's `prepend` import
    mode then finds them in sys.modules in every child)."""
    import importlib

    for d in {str(Path(t).parent) for t in tests} | {"tests"}:
        if d not in sys.path:
            sys.path.insert(0, d)
    for t in tests:
        importlib.import_module(Path(t).stem)


def load_judged(path: str) -> tuple[dict[str, str], dict[str, str]]:
    """([equivalent]: key -> why it cannot change any result, [killed_by]: key -> the test that kills it)."""
    if not os.path.exists(path):
        return {}, {}
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    equivalent = {k: str(v) for k, v in data.get("equivalent", {}).items()}
    killed_by = {k: str(v) for k, v in data.get("killed_by", {}).items()}
    return equivalent, killed_by


def run_module(module: str, args: argparse.Namespace, results: Path | None) -> dict | None:
    """Run every (or the chosen) mutant of one module; its record for `report` (None: its tests fail)."""
    tests = TARGETS[module]
    importlib.import_module(module)
    _preload(tests)
    t0 = time.monotonic()
    base = run_one(None, tests, 3600)
    baseline = time.monotonic() - t0
    if base != "survived":
        print(f"{module}: its tests fail without any mutant", file=sys.stderr)
        return None
    path = importlib.util.find_spec(module).origin  # type: ignore[union-attr]
    identity = Mutant(module, -1, 0, "identity", ast.unparse(ast.parse(Path(str(path)).read_text())))
    if run_one(identity, tests, 3600) != "survived":  # the swap itself must not break the tests
        print(f"{module}: its tests fail with the module swapped in unchanged", file=sys.stderr)
        return None
    limit = args.limit or max(4 * baseline, 90.0)  # generous: a loaded machine must not pass for a hang
    hits = None if args.all_tests else tests_by_line(module, tests)
    print(f"{module}: baseline {baseline:.1f} s, line map after {time.monotonic() - t0:.0f} s", flush=True)
    every = mutants(module)
    muts = every[:: max(args.sample, 1)]
    if args.only:
        muts = [m for m in every if m.what in args.only or m.key in args.only]
    outcomes = []
    for i, (m, outcome) in enumerate(run_many(muts, tests, limit, args.jobs, hits)):
        rec = {"index": m.index, "line": m.line, "what": m.what, "key": m.key, "outcome": outcome}
        outcomes.append(rec)
        if results is not None:
            with results.open("a") as fh:
                fh.write(json.dumps({"type": "mutant", "module": module, **rec}) + "\n")
        took = time.monotonic() - t0
        print(f"{module} {i + 1}/{len(muts)} line {m.line} {m.what}: {outcome} [{took:.0f} s]", flush=True)
    record = {
        "type": "module",
        "module": module,
        "all": len(every),
        "run": len(muts),
        "sample": args.sample,
        "only": bool(args.only),
        "jobs": args.jobs,
        "all_tests": bool(args.all_tests),
        "seconds": round(time.monotonic() - t0, 1),
        "baseline": round(baseline, 2),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if results is not None:
        with results.open("a") as fh:
            fh.write(json.dumps(record) + "\n")
    return {**record, "outcomes": sorted(outcomes, key=lambda r: r["index"])}


def read_results(paths: list[str]) -> list[dict]:
    """Module records (with their outcomes) from `--results` files; a module's last complete run wins."""
    runs: dict[str, dict] = {}
    for path in paths:
        pending: dict[str, list[dict]] = {}
        for line in Path(path).read_text().splitlines():
            rec = json.loads(line)
            if rec["type"] == "mutant":
                pending.setdefault(rec["module"], []).append(rec)
            else:
                outcomes = sorted(pending.pop(rec["module"], []), key=lambda r: r["index"])
                full = runs.get(rec["module"])
                if rec["only"] and full is not None and not full["only"]:
                    # a re-run of chosen mutants (after new tests) of the same module source: its
                    # outcomes replace the full run's for those mutants
                    again = {o["index"]: o for o in outcomes}
                    first = {o["index"]: o["key"] for o in full["outcomes"]}
                    if any(first.get(i) != o["key"] for i, o in again.items()):
                        raise SystemExit(f"{path}: a re-run of mutants the full run of {rec['module']} lacks")
                    full["outcomes"] = [
                        {**again[o["index"]], "rerun": True} if o["index"] in again else o
                        for o in full["outcomes"]
                    ]
                    full["rerun"] = full.get("rerun", 0) + len(outcomes)
                    full["rerun_seconds"] = full.get("rerun_seconds", 0.0) + rec["seconds"]
                else:
                    runs[rec["module"]] = {**rec, "outcomes": outcomes}
        for module, outcomes in pending.items():  # a re-run cut short: the outcomes it has
            full = runs.get(module)
            if full is None or full["only"]:
                continue
            first = {o["index"]: o["key"] for o in full["outcomes"]}
            again = {o["index"]: o for o in outcomes if first.get(o["index"]) == o["key"]}
            full["outcomes"] = [
                {**again[o["index"]], "rerun": True} if o["index"] in again else o for o in full["outcomes"]
            ]
            full["rerun"] = full.get("rerun", 0) + len(again)
            full["rerun_seconds"] = full.get("rerun_seconds", 0.0)
    return [runs[m] for m in TARGETS if m in runs]


def report(runs: list[dict], equivalent: dict[str, str], killed_by: dict[str, str]) -> tuple[str, bool]:
    """The Markdown report of module runs, and whether every module reaches 90%."""
    lines = ["# Mutation testing of the comparison modules and covariance", ""]
    lines += [__doc__.split("\n\n")[1].replace("\n", " "), ""]
    partial = [r for r in runs if r["only"] or r["run"] < r["all"]]
    if partial:
        lines += [
            "**Not a full run**: "
            + "; ".join(f"`{r['module']}` {r['run']} of {r['all']} mutants" for r in partial)
            + ".",
            "",
        ]
    missing = [m for m in TARGETS if m not in {r["module"] for r in runs}]
    if missing:
        lines += ["**Modules not run**: " + ", ".join(f"`{m}`" for m in missing) + ".", ""]
    if not partial and not missing:
        lines += [
            "Every mutant of every module was run (`python tools/mutate.py`, as `nox -s mutation` does).",
            "",
        ]
    reruns = [r for r in runs if r.get("rerun")]
    if reruns:
        lines += [
            "Every survivor of the full run (those judged equivalent too) was run again (`--only`) once "
            "the tests written for the survivors were in: "
            + "; ".join(
                f"`{r['module']}` {r['rerun']} mutants ({r['rerun_seconds'] / 60:.1f} min)" for r in reruns
            )
            + "; the table counts their outcomes of that re-run (the module's source unchanged).",
            "",
        ]
    total = sum(r["seconds"] for r in runs)
    jobs = sorted({r["jobs"] for r in runs})
    lines += [
        f"Wall time: {total / 60:.1f} min summed over the modules' full runs ("
        f"{' or '.join(str(j) for j in jobs)} mutant(s) at a time; per module below), the last finished "
        + max(r["finished"] for r in runs)
        + ".",
        "",
        "| module | mutants | killed | equivalent | surviving | score (killed / non-equivalent) | wall time"
        " |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    details: list[str] = []
    ok = True
    for r in runs:
        module = r["module"]
        outcomes = r["outcomes"]
        survived = [o for o in outcomes if o["outcome"] == "survived"]
        eq = [o for o in survived if o["key"] in equivalent]
        left = [o for o in survived if o["key"] not in equivalent]
        killed = len(outcomes) - len(survived)
        non_eq = len(outcomes) - len(eq)
        score = killed / non_eq if non_eq else 1.0
        ok &= score >= 0.9
        lines.append(
            f"| `{module}` | {len(outcomes)} | {killed} | {len(eq)} | {len(left)} | {100 * score:.1f}% "
            f"| {r['seconds'] / 60:.1f} min |"
        )
        details += ["", f"### `{module}`", "", "Its tests: " + ", ".join(TARGETS[module]) + ".", ""]
        by_key = {o["key"]: o for o in outcomes}
        newly = [(k, t) for k, t in killed_by.items() if k in by_key and by_key[k]["outcome"] != "survived"]
        if newly:
            details += [f"Survivors of an earlier run now killed by a new test ({len(newly)}):", ""]
            details += [f"- line {k.split(':', 2)[1]}, `{k.split(':', 2)[2]}`: {t}" for k, t in newly]
            details.append("")
        again = [o for o in outcomes if o.get("rerun") and o["outcome"] != "survived"]
        if again:
            details += [
                f"Survivors of the full run killed on the re-run by the tests added for them ({len(again)}):",
                "",
            ]
            details += [f"- line {o['line']}: `{o['what']}`" for o in again]
            details.append("")
        if eq:
            details += [f"Survivors judged equivalent ({len(eq)}):", ""]
            details += [f"- line {o['line']}, `{o['what']}`: {equivalent[o['key']]}" for o in eq]
            details.append("")
        if left:
            details += [f"Survivors neither killed nor judged equivalent ({len(left)}):", ""]
            details += [f"- line {o['line']}: `{o['what']}`" for o in left]
            details.append("")
        stale = [
            k
            for k in equivalent
            if k.startswith(module + ":") and by_key.get(k, {}).get("outcome") != "survived"
        ]
        if stale and not r["only"] and r["run"] == r["all"]:
            details += ["Judged equivalent but not a survivor of this run (stale keys): "]
            details += [f"- `{k}`" for k in stale]
            details.append("")
        if not (newly or again or eq or left):
            details += ["Every mutant killed.", ""]
    return "\n".join([*lines, *details]).rstrip() + "\n", ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/mutation.md")
    parser.add_argument("--judged", default="tools/mutation_judged.toml")
    parser.add_argument("--module", action="append", help="only these modules (default: all targets)")
    parser.add_argument(
        "--limit", type=float, default=0.0, help="seconds per mutant (default 4 x baseline, at least 90)"
    )
    parser.add_argument("--only", action="append", help="only the mutant with this description (repeatable)")
    parser.add_argument(
        "--sample", type=int, default=1, metavar="K", help="every K-th mutant only (default 1: all of them)"
    )
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants run at a time (default 1)")
    parser.add_argument(
        "--all-tests",
        action="store_true",
        help="run every test against every mutant (default: first the tests that execute its statement)",
    )
    parser.add_argument("--results", help="append each outcome to this JSON-lines file as it comes")
    parser.add_argument(
        "--report-from",
        nargs="+",
        metavar="RESULTS",
        help="run nothing: write the report from these --results files (e.g. one per module)",
    )
    args = parser.parse_args(argv)
    equivalent, killed_by = load_judged(args.judged)
    if args.report_from:
        runs = read_results(args.report_from)
    else:
        import numpy  # noqa: F401  (loaded once, shared by every forked mutant)
        import pandas  # noqa: F401
        import pytest  # noqa: F401
        import scipy.sparse  # noqa: F401

        results = Path(args.results) if args.results else None
        runs = []
        for module in args.module or list(TARGETS):
            run = run_module(module, args, results)
            if run is None:
                return 2
            runs.append(run)
    text, ok = report(runs, equivalent, killed_by)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
