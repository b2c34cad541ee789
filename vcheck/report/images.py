"""Pictures of a mixed model's matrices, like R's `image()` of a sparse Matrix.

- `structure_figure`: Z (n x q), Lambda (q x q), G = sigma^2 Lambda Lambda' and V = Z G Z' + sigma^2 I.
- `kronecker_figure`: the manual kronecker recipe next to lme4 (see `vcheck.report.recipe`): G from
  `kronecker(diag(k), bdiag(VarCorr))`, and for a one-term model V built by hand on rows sorted by group
  versus rows in another order.

Zeros are white; every non-zero is coloured by its value (reds positive, blues negative), the palest
shade still visible, so the pattern of non-zeros reads like R's `image()`.  A matrix larger than the
panel is binned, each pixel keeping the entry of largest magnitude in its bin, so no non-zero disappears.
Large q x q matrices show the first levels of each term, large V its first rows.  Matplotlib runs on the
Agg backend and PNGs are written without the Software tag (no version, no date): the same input gives
byte-identical files.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from vcheck.core.record import LmerFit
from vcheck.report import recipe

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: at most this many pixels per side for one matrix (bins beyond it)
MAX_BINS = 240
#: V is drawn on its first rows/columns only when n is larger than this
V_ROWS = 90
#: a q x q matrix with more rows than this shows the first levels of each term only
Q_ROWS = 72
#: resolution of the PNGs: small files, still legible on a laptop screen
DPI = 80
#: two matrices "equal" in the pictures when they differ by at most this, relative to their scale
EQUAL_REL = 1e-8


@dataclass(frozen=True)
class Panel:
    """One matrix to draw: its values (dense or sparse), a title, axis labels and how to colour it.

    scale: the colour scale's limit (default: the largest |entry|); zero_below: entries with |x| at most this
    are drawn white like exact zeros (for differences at rounding level); sections: (start, label) of
    blocks along both axes of a square matrix (random-effects terms), drawn as lines and named on the axis.
    """

    matrix: Any
    title: str
    xlabel: str = ""
    ylabel: str = ""
    scale: float | None = None
    zero_below: float = 0.0
    sections: tuple[tuple[int, str], ...] = ()


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend (imported here so `import vcheck` never pulls matplotlib)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "svg.hashsalt": "vcheck",
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.titleweight": "bold",
            "figure.dpi": DPI,
            "figure.facecolor": "white",
        }
    )
    return plt


def _colormaps() -> tuple[Any, Any]:
    """(positive-only map, signed map): reds from a visible pale shade; blues below zero."""
    from matplotlib import colormaps
    from matplotlib.colors import ListedColormap

    reds = colormaps["Reds"](np.linspace(0.3, 1.0, 128))
    blues = colormaps["Blues"](np.linspace(1.0, 0.3, 128))
    positive = ListedColormap(reds, name="vcheck_pos").with_extremes(bad="white")
    signed = ListedColormap(np.vstack([blues, reds]), name="vcheck_signed").with_extremes(bad="white")
    return positive, signed


def binned(matrix: Any, max_rows: int = MAX_BINS, max_cols: int = MAX_BINS) -> tuple[np.ndarray, int, int]:
    """Shrink a matrix to at most max_rows x max_cols cells, each holding the largest-magnitude entry of its
    bin (signed).  Returns (cells, rows per bin, columns per bin); bins of 1 leave the matrix as it is."""
    M = sp.coo_matrix(matrix)
    nr, nc = M.shape
    fr = max(1, -(-nr // max_rows))
    fc = max(1, -(-nc // max_cols))
    best = np.zeros((-(-nr // fr), -(-nc // fc)))
    if M.nnz:
        r, c, v = M.row // fr, M.col // fc, M.data
        # per bin, the entry of largest |value|: sort by |value| and let the last write win
        order = np.lexsort((np.abs(v), c, r))
        best[r[order], c[order]] = v[order]
    return best, fr, fc


def _draw(ax: Axes, panel: Panel, plt: Any) -> None:
    """One panel: the binned matrix, zeros white, a colour bar, term sections marked."""
    cells, fr, fc = binned(panel.matrix)
    nr, nc = sp.coo_matrix(panel.matrix).shape
    cells = np.where(np.abs(cells) <= panel.zero_below, 0.0, cells)
    masked = np.ma.masked_equal(cells, 0.0)
    biggest = float(np.max(np.abs(cells))) if cells.size else 0.0
    scale = panel.scale if panel.scale else biggest
    scale = scale if scale > 0 else 1.0
    positive, signed = _colormaps()
    if np.any(cells < 0):
        cmap, vmin = signed, -scale
    else:
        cmap, vmin = positive, 0.0
    image = ax.imshow(
        masked,
        cmap=cmap,
        vmin=vmin,
        vmax=scale,
        interpolation="nearest",
        aspect="auto",
        extent=(0.5, nc + 0.5, nr + 0.5, 0.5),
    )
    ax.set_facecolor("white")
    ax.set_title(panel.title)
    ax.set_xlabel(panel.xlabel + (f"  (pixel = {fc} columns)" if fc > 1 else ""))
    ax.set_ylabel(panel.ylabel + (f"  (pixel = {fr} rows)" if fr > 1 else ""))
    ax.tick_params(labelsize=8)
    if panel.sections:
        starts = [s for s, _ in panel.sections] + [nc]
        for s in starts[1:-1]:
            ax.axhline(s + 0.5, color="0.55", lw=0.6)
            ax.axvline(s + 0.5, color="0.55", lw=0.6)
        mids = [(a + b) / 2 + 0.5 for a, b in itertools.pairwise(starts)]
        # a narrow section gets a shortened label (about 55 characters fit across a panel, 36 up it)
        widths = [(b - a) / max(nc, 1) for a, b in itertools.pairwise(starts)]
        names = [label for _, label in panel.sections]
        x_labels = [_fit_label(t, int(w * 55)) for t, w in zip(names, widths, strict=True)]
        y_labels = [_fit_label(t, int(w * 36)) for t, w in zip(names, widths, strict=True)]
        ax.set_xticks(mids, x_labels, fontsize=8)
        ax.set_yticks(mids, y_labels, fontsize=8, rotation=90, va="center")
    bar = plt.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    bar.ax.tick_params(labelsize=7)
    if not np.any(cells):
        ax.text(0.5, 0.5, "all zero", transform=ax.transAxes, ha="center", va="center", color="0.4")


def _fit_label(label: str, room: int) -> str:
    """The label, cut to `room` characters with an ellipsis (at least its first character)."""
    return label if len(label) <= room else label[: max(room - 1, 1)] + "…"


def save_png(fig: Figure, path: Path) -> Path:
    """Write the figure as a PNG with no Software tag or date: identical input, identical bytes.

    The pictures are flat colours, so a 256-colour palette (median cut, no dithering: deterministic) keeps
    them visually the same at about a third of the size.
    """
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    buffer.seek(0)
    with Image.open(buffer) as rgba:
        image = rgba.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)
    return path


def _grid(
    panels: Sequence[Sequence[Panel | str | None]], title: str, path: Path, cell: tuple[float, float]
) -> Path:
    """Draw panels on a grid (None leaves a cell empty) under a figure title, and save."""
    plt = _pyplot()
    nrow, ncol = len(panels), max(len(r) for r in panels)
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(cell[0] * ncol, cell[1] * nrow), squeeze=False, layout="constrained"
    )
    try:
        for i, row in enumerate(panels):
            for j in range(ncol):
                panel = row[j] if j < len(row) else None
                if panel is None or isinstance(panel, str):
                    axes[i][j].set_axis_off()
                    if panel:  # a note in place of a matrix
                        axes[i][j].text(
                            0.5,
                            0.5,
                            panel,
                            ha="center",
                            va="center",
                            fontsize=10,
                            wrap=True,
                            transform=axes[i][j].transAxes,
                        )
                else:
                    _draw(axes[i][j], panel, plt)
        fig.suptitle(title, fontsize=11)
        return save_png(fig, path)
    finally:
        plt.close(fig)


# --- the model's structure ----------------------------------------------------------------------------------


def term_sample(fit: LmerFit, limit: int = Q_ROWS) -> tuple[np.ndarray, tuple[tuple[int, str], ...], bool]:
    """Rows/columns of a q x q matrix to show: all when q <= limit, else the first levels of every term.

    Returns (indices into 0..q-1, sections as (start within the indices, term label), whether sampled).
    """
    ts = recipe.terms(fit)
    q = ts[-1].stop if ts else 0
    sampled = q > limit
    idx: list[np.ndarray] = []
    sections: list[tuple[int, str]] = []
    groups = [t.group for t in ts]
    for t in ts:
        label = t.group if groups.count(t.group) == 1 else f"{t.group}: {', '.join(t.cnms)}"
        m = t.nlevels if not sampled else min(t.nlevels, max(2, limit // (len(ts) * t.nc)))
        sections.append((sum(len(i) for i in idx), label))
        idx.append(np.arange(t.start, t.start + m * t.nc))
    indices = np.concatenate(idx) if idx else np.arange(0)
    if len(ts) <= 1 and not sampled:
        return indices, (), False
    return indices, tuple(sections), sampled


def _q_labels(q: int, shown: int, sampled: bool, sections: tuple[tuple[int, str], ...]) -> str:
    """Axis label of a q x q panel: which rows it shows."""
    if sampled:
        return f"first levels of each term ({shown} of {q})"
    return "random effects by term" if sections else "random effect"


def structure_panels(fit: LmerFit, v_rows: int = V_ROWS) -> list[list[Panel | str | None]]:
    """Z, Lambda, G and V of a fit (lme4's layout), two by two."""
    Zt = sp.csc_matrix(fit._need("Zt"))
    q, n = Zt.shape
    idx, sections, sampled = term_sample(fit)
    L = recipe.lambda_lower(fit)[idx][:, idx]
    G = recipe.G_lme4(fit)[idx][:, idx]
    shown = min(n, v_rows)
    V = recipe.V_lme4_rows(fit, np.arange(shown))
    v_title = f"V = ZGZ' + σ²I  ({n} x {n})" if shown == n else f"V: first {shown} of {n} rows"
    re_label = _q_labels(q, len(idx), sampled, sections)
    return [
        [
            Panel(Zt.T, f"Z  ({n} x {q})", "random effect (column of Z)", "observation (row of data)"),
            Panel(L, f"Λ = Lambdat'  ({q} x {q})", re_label, re_label, sections=sections),
        ],
        [
            Panel(G, f"G = σ²ΛΛ'  ({q} x {q})", re_label, re_label, sections=sections),
            Panel(V, v_title, "observation", "observation"),
        ],
    ]


def structure_figure(fit: LmerFit, path: Path, title: str = "") -> Path:
    """PNG of Z, Lambda, G and V (see the module docstring); returns the path."""
    return _grid(structure_panels(fit), title or fit.formula, path, cell=(4.6, 3.8))


# --- the manual kronecker recipe --------------------------------------------------------------------------


@dataclass(frozen=True)
class KroneckerCheck:
    """What the kronecker figure shows, for the page's text.

    k: the k of kronecker(diag(k), ...) (None when G's size is not a multiple: the recipe cannot be formed);
    g_max_diff: max |G - Gm|; v_sorted_diff / v_unsorted_diff: max |V - V by hand| on the rows shown (None
    unless the model has exactly one term); unsorted_label: which other row order was used.
    """

    k: int | None
    nterms: int
    group: str
    g_max_diff: float | None
    g_scale: float
    v_sorted_diff: float | None = None
    v_unsorted_diff: float | None = None
    v_scale: float = 0.0
    unsorted_label: str = ""
    clusters_sorted: int = 0
    clusters_unsorted: int = 0
    per_term_matches: bool | None = None

    @property
    def g_matches(self) -> bool:
        return self.g_max_diff is not None and self.g_max_diff <= EQUAL_REL * max(self.g_scale, 1.0)

    @property
    def v_sorted_matches(self) -> bool | None:
        return (
            None if self.v_sorted_diff is None else self.v_sorted_diff <= EQUAL_REL * max(self.v_scale, 1.0)
        )

    @property
    def v_unsorted_matches(self) -> bool | None:
        if self.v_unsorted_diff is None:
            return None
        return self.v_unsorted_diff <= EQUAL_REL * max(self.v_scale, 1.0)


def _verdict(diff: float, scale: float) -> str:
    return "equal" if diff <= EQUAL_REL * max(scale, 1.0) else f"differ by up to {diff:.3g}"


def kronecker_check(
    fit: LmerFit, v_rows: int = V_ROWS
) -> tuple[KroneckerCheck, list[list[Panel | str | None]]]:
    """Compare lme4's G and V with the manual kronecker recipe; returns the facts and the panels to draw."""
    G = recipe.G_lme4(fit).toarray()
    Gm = recipe.kronecker_G(fit)
    ts = recipe.terms(fit)
    m = recipe.varcorr_bdiag(fit).shape[0]
    k = G.shape[0] // m if Gm is not None else None
    g_scale = float(np.max(np.abs(G))) if G.size else 0.0
    idx, sections, sampled = term_sample(fit)
    q = G.shape[0]
    re_label = _q_labels(q, len(idx), sampled, sections)

    def q_panel(M: np.ndarray, name: str, **kw: Any) -> Panel:
        return Panel(M[np.ix_(idx, idx)], name, re_label, re_label, sections=sections, **kw)

    g_row: list[Panel | str | None] = [q_panel(G, f"lme4's G  ({q} x {q})")]
    g_diff = None
    if Gm is not None:
        g_diff = float(np.max(np.abs(G - Gm)))
        g_row += [
            q_panel(Gm, f"kronecker(diag({k}), bdiag(VarCorr))"),
            q_panel(
                np.abs(G - Gm),
                f"|difference|: {_verdict(g_diff, g_scale)}",
                scale=g_scale,
                zero_below=EQUAL_REL * max(g_scale, 1.0),
            ),
        ]
    else:
        g_row += [
            f"kronecker(diag(k), bdiag(VarCorr)) cannot be formed:\n"
            f"G has {q} rows, not a multiple of bdiag(VarCorr)'s {m}:\nthere is no k.",
            None,
        ]
    panels: list[list[Panel | str | None]] = [g_row]
    per_term: bool | None = None
    if len(ts) > 1:
        right = recipe.per_term_kronecker_G(fit)
        r_diff = float(np.max(np.abs(G - right)))
        per_term = r_diff <= EQUAL_REL * max(g_scale, 1.0)
        panels.append(
            [
                q_panel(right, "per term: bdiag(kronecker(diag(k_t), G_t))"),
                q_panel(
                    np.abs(G - right),
                    f"|difference|: {_verdict(r_diff, g_scale)}",
                    scale=g_scale,
                    zero_below=EQUAL_REL * max(g_scale, 1.0),
                ),
                "One kronecker per term, stacked\nin lme4's term order, "
                + ("is lme4's G." if per_term else "still differs\nfrom lme4's G."),
            ]
        )
    check = KroneckerCheck(
        k=k,
        nterms=len(ts),
        group=ts[0].group if ts else "",
        g_max_diff=g_diff,
        g_scale=g_scale,
        per_term_matches=per_term,
    )
    if len(ts) != 1:
        return check, panels

    term = ts[0]
    codes, _ = recipe.term_model_matrix(fit, term)
    n = len(codes)
    shown = min(n, v_rows)
    if recipe.is_sorted(codes):
        other, label = recipe.shuffled_order(n), "rows shuffled (seed 0)"
    else:
        other, label = np.arange(n), "rows as in the data"
    facts: dict[str, Any] = {"unsorted_label": label}
    what = f"first {shown} rows" if shown < n else f"all {n} rows"
    for key, order, name in (
        ("sorted", recipe.sorted_order(codes), f"rows sorted by {term.group}"),
        ("unsorted", other, label),
    ):
        rows = order[:shown]
        V = recipe.V_lme4_rows(fit, rows)
        Vh = recipe.V_recipe_rows(fit, term, rows)
        diff = float(np.max(np.abs(V - Vh)))
        v_scale = float(np.max(np.abs(V)))
        clusters = int(recipe.runs(codes[order])[-1]) + 1
        facts[f"v_{key}_diff"], facts["v_scale"], facts[f"clusters_{key}"] = diff, v_scale, clusters
        panels.append(
            [
                Panel(V, f"lme4's V, {name}", f"observation ({what})", "observation"),
                Panel(Vh, f"by hand: {clusters} runs of rows = clusters", "observation", "observation"),
                Panel(
                    np.abs(V - Vh),
                    f"|difference|: {_verdict(diff, v_scale)}",
                    "observation",
                    "observation",
                    scale=v_scale,
                    zero_below=EQUAL_REL * max(v_scale, 1.0),
                ),
            ]
        )
    return KroneckerCheck(**{**check.__dict__, **facts}), panels


def kronecker_figure(fit: LmerFit, path: Path, title: str = "") -> KroneckerCheck:
    """PNG of the manual kronecker recipe against lme4 (G, and V sorted vs unsorted); returns the facts."""
    check, panels = kronecker_check(fit)
    _grid(panels, title or "the manual kronecker recipe", path, cell=(4.1, 3.5))
    return check
