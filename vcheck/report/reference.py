"""The reference reports: every built-in example fitted by vcheck and by live lme4, compared, and drawn.

    write_reference_reports(out_dir) writes out_dir/index.{html,md}, out_dir/<example>.{html,md},
    out_dir/img/<example>-structure.png and out_dir/img/<example>-kronecker.png

Nothing in the output depends on the time, the machine's paths or the order files were found in: running
it twice gives identical files (the R and lme4 versions are part of the content, on purpose).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vcheck.report.pages import write_page
from vcheck.report.tables import ComparisonRow, comparison_rows, diff_report, estimate_rows, value_report

if TYPE_CHECKING:
    from vcheck.core.record import LmerFit
    from vcheck.reference.examples import Example
    from vcheck.report.images import KroneckerCheck

COMMAND = "vcheck report"
PRECISION_NOTE = (
    "Values to 6 significant digits, differences to one; differences below 1e-8 (1e-12 at a fixed θ) "
    "print as “< 1e-8”: live lme4 itself moves by about 1e-9 between R sessions (with the memory layout), "
    "and these pages must not change when nothing did. The vcheck compare command prints every digit."
)


@dataclass
class ExamplePage:
    """What the index needs to know about one example's page."""

    name: str
    formula: str
    description: str
    REML: bool
    n: int
    rows: list[ComparisonRow] = field(default_factory=list)
    kron_short: str = ""

    @property
    def n_total(self) -> int:
        return len(self.rows)

    @property
    def n_disagree(self) -> int:
        return sum(not r.agrees for r in self.rows)

    @property
    def all_agree(self) -> bool:
        return self.n_disagree == 0


def shown_description(text: str) -> str:
    """An example's description as pages show it: the frozen descriptions begin "seed 1: ", numbering the
    original note's models, which readers take for a random seed; pages leave that out."""
    return re.sub(r"^seed \d+:\s*", "", text)


def _column_kinds(ex: Example) -> list[tuple[str, str]]:
    """(column, R type) of the columns the formula uses, in data order."""
    kinds = {c["name"]: c["kind"] for c in ex.columns}
    used = [c for c in ex.data.columns if _mentions(ex.formula, str(c))]
    return [(str(c), kinds.get(str(c), str(ex.data[c].dtype))) for c in used]


def _mentions(formula: str, column: str) -> bool:
    import re

    return re.search(rf"(?<![\w.]){re.escape(column)}(?![\w.])", formula) is not None


def _model_facts(ex: Example, ref: LmerFit) -> dict[str, Any]:
    flist = ref.flist or {}
    return {
        "name": ex.name,
        "description": shown_description(ex.description),
        "formula": ex.formula,
        "REML": ex.REML,
        "n": ref.n,
        "n_na_dropped": ref.n_na_dropped,
        "groups": [(g, len(f.categories)) for g, f in flist.items()],
        "cnms": ref.cnms or [],
        "p": len(ref.X_names or []),
        "q": 0 if ref.Zt is None else int(ref.Zt.shape[0]),
        "ntheta": 0 if ref.theta is None else len(ref.theta),
        "columns": _column_kinds(ex),
    }


def _code(text: str) -> str:
    return f"<code>{text}</code>"


def kronecker_sentences(check: KroneckerCheck, html: bool) -> tuple[list[str], str]:
    """The kronecker figure in words: bullet points for the page, and a short verdict for the index."""
    c = _code if html else (lambda t: f"`{t}`")
    lines: list[str] = []
    if check.k is None:
        lines.append(
            f"G's size is not a multiple of {c('bdiag(VarCorr(m))')}'s: the recipe cannot even be formed."
        )
        short = "G: cannot be formed"
    elif check.g_matches:
        lines.append(
            f"One random-effects term: {c(f'kronecker(diag({check.k}), G)')} is exactly lme4's G, "
            "because lme4 orders Z's columns level by level within the term, whatever the order of the rows."
        )
        short = "G right"
    else:
        lines.append(
            f"{check.nterms} random-effects terms: {c(f'kronecker(diag({check.k}), bdiag(VarCorr))')} "
            f"interleaves the terms' blocks, but lme4 stacks them term after term; the two G differ by up to "
            f"{check.g_max_diff:.3g}."
        )
        short = "G wrong (several terms)"
    if check.per_term_matches is not None:
        verdict = "it is exactly lme4's G" if check.per_term_matches else "even that differs from lme4's G"
        lines.append(
            f"Done right, one kronecker per term, "
            f"{c('bdiag(kronecker(diag(k1), G1), kronecker(diag(k2), G2), ...)')} in lme4's term order "
            f"(the manual recipe done per term, as for a model with several terms): {verdict}."
        )
    if check.v_sorted_matches is not None:
        lines.append(
            f"Built by hand from the rows sorted by {c(check.group)}, Z has one block per run of equal "
            f"labels ({check.clusters_sorted} runs = {check.clusters_sorted} groups) and V is lme4's V."
        )
        if check.v_unsorted_matches:
            if check.g_scale <= 1e-8 * max(check.v_scale, 1.0):
                why = "the fit is singular (G = 0), so there is no covariance between rows to lose"
            elif check.clusters_unsorted == check.clusters_sorted:
                why = "the runs of equal labels are the groups again"
            else:
                why = "no two rows of a group that the runs split apart are among the rows shown"
            lines.append(f"On {check.unsorted_label}, V by hand is still right: {why}.")
            short += "; V by hand right"
        else:
            lines.append(
                f"On {check.unsorted_label}, the same recipe sees {check.clusters_unsorted} runs, treats "
                "rows of one group as independent, and V is wrong "
                f"(by up to {check.v_unsorted_diff or 0:.3g}): the by-hand recipe silently needs sorted "
                "data. lme4's Zt does not."
            )
            short += "; V by hand right only on sorted rows"
    elif check.nterms > 1:
        short += "; V by hand not applicable"
    return lines, short


def _frozen_check(ex: Example, ref: LmerFit) -> dict[str, Any]:
    """Does the frozen reference still match live lme4?  (A change in lme4 shows up here.)"""
    from vcheck.auditing.comparison import compare

    rows = comparison_rows(compare(ex.expected, ref))
    differs = [r.quantity for r in rows if not r.agrees and r.verdict != "not available"]
    return {"matches": not differs, "differs": differs, "lme4": ex.versions.get("lme4", "?")}


def _image_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return int(im.size[0]), int(im.size[1])


def build_example(ex: Example, out_dir: Path, prev: str | None, next_: str | None) -> ExamplePage:
    """Fit one example with vcheck and live lme4, compare, draw, and write its two pages."""
    from vcheck import __version__, reference
    from vcheck.auditing.comparison import compare
    from vcheck.core import tolerances as tol
    from vcheck.core.fit import lmer
    from vcheck.report import images
    from vcheck.report.summary import summary_text

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mine = lmer(ex.formula, ex.data, REML=ex.REML)
    ref = reference.lmer(ex.formula, ex.data, REML=ex.REML)
    messages = [("vcheck", text) for text in dict.fromkeys(" ".join(str(w.message).split()) for w in caught)]
    messages += [("lme4", text) for text in dict.fromkeys(_lme4_messages(ref))]
    rows = comparison_rows(compare(mine, ref))
    img_dir = out_dir / "img"
    structure = images.structure_figure(
        ref, img_dir / f"{ex.name}-structure.png", title=f"{ex.name}:  {ex.formula}"
    )
    check = images.kronecker_figure(
        ref,
        img_dir / f"{ex.name}-kronecker.png",
        title=f"{ex.name}: the manual kronecker recipe against lme4",
    )
    kron_html, short = kronecker_sentences(check, html=True)
    kron_md, _ = kronecker_sentences(check, html=False)
    failing = [r for r in rows if not r.agrees]
    context = {
        "ex": _model_facts(ex, ref),
        "rows": rows,
        "messages": messages,
        "precision_note": PRECISION_NOTE,
        "estimates": [
            {"name": e.name, "mine": value_report(e.mine), "ref": value_report(e.ref), "diff": diff_report(e)}
            for e in estimate_rows(mine, ref)
        ],
        "agreement": {
            "all_agree": not failing,
            "n_total": len(rows),
            "n_disagree": len(failing),
            "kinds": sorted({r.kind or "unclassified" for r in failing}),
        },
        "versions": _versions(ref),
        "tolerances": (
            f"{tol.AT_OPTIMUM:g} relative at the optimum, {tol.AT_THETA:g} at a fixed θ, exact for layouts"
        ),
        "frozen": _frozen_check(ex, ref),
        "summary": summary_text(mine, data_name=ex.name),
        "images": {
            "structure": f"img/{structure.name}",
            "structure_size": _image_size(structure),
            "kronecker": f"img/{ex.name}-kronecker.png",
            "kronecker_size": _image_size(img_dir / f"{ex.name}-kronecker.png"),
        },
        "kron": check,
        "kron_text": kron_html,
        "kron_md": kron_md,
        "v_rows": images.V_ROWS,
        "q_rows": images.Q_ROWS,
        "prev": prev,
        "next": next_,
        "command": COMMAND,
        "vcheck_version": __version__,
    }
    write_page(out_dir, ex.name, "example", **context)
    return ExamplePage(
        name=ex.name,
        formula=ex.formula,
        description=shown_description(ex.description),
        REML=ex.REML,
        n=int(ref.n or 0),
        rows=rows,
        kron_short=short,
    )


def _lme4_messages(fit: LmerFit) -> list[str]:
    """What lme4 said while fitting: its convergence/boundary messages and R's warnings and messages."""
    info = fit.optinfo or {}
    texts = [
        *(info.get("lme4_messages") or []),
        *(info.get("r_warnings") or []),
        *(info.get("r_messages") or []),
    ]
    return [" ".join(str(t).split()) for t in texts if str(t).strip()]


def _versions(fit: LmerFit) -> dict[str, str]:
    v = dict(fit.versions)
    v.setdefault("R", "R (version unknown)")
    v.setdefault("lme4", "?")
    v.setdefault("LC_COLLATE", v.get("locale", "?"))
    v["R"] = v["R"].replace("R version ", "R ")
    return v


def find_audits(out_dir: Path) -> list[dict[str, str]]:
    """Audit reports already under out_dir (`audit-*/index.html`), sorted by name, for the index."""
    import json

    found = []
    for index in sorted(out_dir.glob("audit-*/index.html")):
        folder = index.parent
        summary = ""
        findings = folder / "findings.json"
        if findings.is_file():
            try:
                summary = str(json.loads(findings.read_text(encoding="utf-8")).get("summary_line", ""))
            except (ValueError, OSError):
                summary = ""
        target = folder.name.removeprefix("audit-")
        found.append(
            {
                "target": target,
                "href": f"{folder.name}/index.html",
                "href_md": f"{folder.name}/index.md",
                "summary": summary,
            }
        )
    return found


def write_reference_reports(out_dir: Path, names: list[str] | None = None, progress: bool = True) -> Path:
    """Regenerate the reference reports under out_dir; returns the index page's path."""
    from vcheck import __version__
    from vcheck.core.errors import DataError
    from vcheck.reference import examples
    from vcheck.report.progress import progress_callback

    try:
        all_names = examples.names()
    except FileNotFoundError as exc:
        raise DataError(f"no built-in examples: {exc}") from None
    from vcheck import reference

    versions = _versions_from(reference.versions())  # first: without R this fails at once, in one line
    chosen = all_names if not names else [n.strip() for n in names if n.strip()]
    unknown = [n for n in chosen if n not in all_names]
    if unknown:
        raise DataError(f"unknown example(s) {', '.join(unknown)}; built-in examples: {', '.join(all_names)}")
    from vcheck.report import index

    out_dir.mkdir(parents=True, exist_ok=True)
    # the index keeps the folder's other pages (`vcheck report --examples NAMES` merges, see report.index)
    existing = index.read_rows(out_dir)
    linked = [n for n in all_names if n in existing or n in chosen]
    pages: list[ExamplePage] = []
    with progress_callback("report", enabled=progress, unit="example", total=len(chosen)) as tick:
        for i, name in enumerate(chosen):
            ex = examples.load(name)
            prev, next_ = index.neighbours(linked, name)
            pages.append(build_example(ex, out_dir, prev, next_))
            tick(i + 1, len(chosen), name)
    rows = index.merge_rows(existing, [index.IndexRow.of(p) for p in pages], all_names)
    index.write_rows(out_dir, rows)
    failing = [r for r in rows if not r.all_agree]
    html, _ = write_page(
        out_dir,
        "index",
        "index",
        pages=rows,
        all_agree=not failing,
        n_failing=len(failing),
        versions=versions,
        audits=find_audits(out_dir),
        command=COMMAND,
        vcheck_version=__version__,
    )
    return html


def _versions_from(v: dict[str, str]) -> dict[str, str]:
    out = dict(v)
    out["R"] = out.get("R", "R").replace("R version ", "R ")
    out.setdefault("LC_COLLATE", out.get("locale", "?"))
    out.setdefault("lme4", "?")
    out.setdefault("rpy2", "")
    return out


__all__ = ["ExamplePage", "build_example", "kronecker_sentences", "write_reference_reports"]
