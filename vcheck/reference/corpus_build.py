"""Build `r_reference/corpus/` from lme4's sources: run `r_reference/corpus.R` over every file, deduplicate.

Files: `tests/*.R`, `tests/testthat/test-*.R`, `man/*.Rd` (examples) and `vignettes/*.Rnw|*.Rmd` (evaluated
chunks) that mention `lmer`.  Each runs in its own Rscript under a timeout; what it recorded before a
timeout is kept.  Calls are deduplicated on (formula, REML, data hash, extra arguments); the first call
(in file order) names the entry and later ones are listed in its `also_in`.  Non-Gaussian results (lmer
called with `family=`, redirected to glmer) and `devFunOnly = TRUE` calls are counted, not kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

R_SCRIPT = Path(__file__).resolve().parents[2] / "r_reference" / "corpus.R"
_MENTIONS_LMER = re.compile(r"\blmer\b")


def source_files(src: Path) -> list[str]:
    """The files of lme4's sources that mention lmer, relative to `src`, in a fixed order."""
    patterns = ["tests/*.R", "tests/testthat/test-*.R", "man/*.Rd", "vignettes/*.Rnw", "vignettes/*.Rmd"]
    out: list[str] = []
    for pattern in patterns:
        for path in sorted(src.glob(pattern)):
            if _MENTIONS_LMER.search(path.read_text(errors="replace")):
                out.append(path.relative_to(src).as_posix())
    return out


def run_file(src: Path, raw: Path, rel: str, timeout: float) -> dict[str, Any]:
    """Run corpus.R on one file; return its status (ok / timeout / exit code).  The status is kept in
    `raw/status/`, so a rerun with the same `raw` directory resumes where it stopped."""
    done = raw / "status" / (re.sub(r"[/.]", "_", rel) + ".json")
    if done.exists():
        return dict(json.loads(done.read_text()))
    cmd = ["Rscript", str(R_SCRIPT), str(src), str(raw), rel]
    try:
        env = {**os.environ, "NOT_CRAN": "true"}  # testthat::skip_on_cran() runs the tests, as lme4's CI does
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
        status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}"
    except subprocess.TimeoutExpired:
        status = f"timeout after {timeout:g} s (calls recorded before it are kept)"
    result = {"file": rel, "status": status}
    done.parent.mkdir(parents=True, exist_ok=True)
    done.write_text(json.dumps(result))
    return result


def _key(rec: dict[str, Any]) -> str:
    args = {k: {"expr": v.get("expr"), "value": v.get("value")} for k, v in sorted(rec["args"].items())}
    blob = json.dumps([rec["formula"], rec["REML"], rec["data"].get("hash"), args], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _entry_name(rec: dict[str, Any], key: str) -> str:
    stem = Path(rec["source"]["file"]).name.rsplit(".", 1)[0]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem)
    line = rec["source"].get("line")
    return f"{stem}_L{line if line is not None else 0}_{key[:6]}"


def build(raw: Path, out: Path, files: list[dict[str, Any]], doc: str = "") -> dict[str, Any]:
    """Deduplicate the raw records of `raw/calls/*.jsonl` into `out/<entry>/entry.json` + `out/data/`."""
    versions = json.loads((raw / "versions.json").read_text())
    records: list[dict[str, Any]] = []
    for f in files:
        path = raw / "calls" / (re.sub(r"[/.]", "_", f["file"]) + ".jsonl")
        if path.exists():
            for line in path.read_text().splitlines():
                if line.strip():
                    records.append(json.loads(line))
    counts = {
        "calls": len(records),
        "entries": 0,
        "duplicates": 0,
        "not_gaussian": 0,
        "devfun": 0,
        "undescribed": 0,
    }
    entries: dict[str, dict[str, Any]] = {}
    for rec in records:
        status = rec.get("lme4", {}).get("status")
        if "describe_error" in rec:
            counts["undescribed"] += 1
            continue
        if status in ("not gaussian", "other"):
            counts["not_gaussian"] += 1
            continue
        if status == "devfun":
            counts["devfun"] += 1
            continue
        key = _key(rec)
        if key in entries:
            entries[key]["also_in"].append(rec["source"])
            counts["duplicates"] += 1
            continue
        rec["also_in"] = []
        entries[key] = rec
    if out.exists():
        shutil.rmtree(out)
    (out / "data").mkdir(parents=True)
    used: set[str] = set()
    index = []
    for key, rec in entries.items():
        name = _entry_name(rec, key)
        entry = {
            "name": name,
            "formula": rec["formula"],
            "REML": rec["REML"],
            "args": rec["args"],
            "data": rec["data"],
            "data_expr": rec.get("data_expr"),
            "data_from": rec.get("data_from"),
            "call": rec["call"],
            "source": rec["source"],
            "also_in": rec["also_in"],
            "lme4": rec["lme4"],
            "versions": versions,
        }
        (out / name).mkdir()
        (out / name / "entry.json").write_text(json.dumps(entry, indent=1, sort_keys=True) + "\n")
        if rec["data"].get("hash"):
            used.add(rec["data"]["hash"])
        index.append(name)
    for h in sorted(used):
        for ext in (".csv", ".json"):
            shutil.copy(raw / "data" / (h + ext), out / "data" / (h + ext))
    counts["entries"] = len(entries)
    summary = {"versions": versions, "counts": counts, "files": files, "entries": sorted(index)}
    (out / "index.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / "README.md").write_text(_readme(counts, versions, doc))
    return summary


def _readme(counts: dict[str, int], versions: dict[str, str], doc: str) -> str:
    built = [
        f"Built with {versions.get('R')}, lme4 {versions.get('lme4')}:",
        f"{counts['calls']} lmer() calls recorded,",
        f"{counts['entries']} distinct entries,",
        f"{counts['duplicates']} duplicates,",
        f"{counts['devfun']} devFunOnly calls,",
        f"{counts['undescribed']} calls whose arguments could not be evaluated where the call was made",
        "(update() tries the formula's environment first; lme4 fails there too),",
        f"{counts['not_gaussian']} non-Gaussian.",
        "`index.json` lists the source files, their run status and the entries.",
    ]
    return (
        "\n\n".join(
            [
                "# lme4's own test models, with lme4's answers",
                "Written by `python -m vcheck.reference.corpus --regenerate SRC_DIR`; do not edit by hand.",
                doc.strip(),
                " ".join(built),
            ]
        )
        + "\n"
    )


def regenerate(
    src: Path, out: Path, timeout: float = 240.0, jobs: int = 2, raw: Path | None = None, doc: str = ""
) -> dict[str, Any]:
    """Run corpus.R over lme4's sources at `src` and rebuild `out` (r_reference/corpus).  `raw` keeps the
    raw records (and lets a rerun resume); by default they go to a temporary directory."""
    rels = source_files(src)
    with tempfile.TemporaryDirectory(prefix="vcheck-corpus-") as tmp:
        raw_dir = raw if raw is not None else Path(tmp)
        raw_dir.mkdir(parents=True, exist_ok=True)

        def one(rel: str) -> dict[str, Any]:
            result = run_file(src, raw_dir, rel, timeout)
            print(f"{result['file']}: {result['status']}", file=sys.stderr, flush=True)
            return result

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            files = list(pool.map(one, rels))
        return build(raw_dir, out, files, doc)
