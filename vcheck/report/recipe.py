"""The manual kronecker recipe's G and V (built by hand) next to lme4's, as matrices to draw.

The note builds G by hand as `Gm = kronecker(diag(k), G)` with `G = bdiag(VarCorr(m))`, and V as
`Z Gm Z' + sigma^2 I`.  Two separate things can go wrong, and the pictures show each:

- G: lme4's `G = sigma^2 Lambda Lambda'` is in Zt's row order: term by term, level-major inside a term.
  `kronecker(diag(k), bdiag(VarCorr))` is the same matrix only when the model has one random-effects term;
  with two or more terms (nested, crossed, `||`) it interleaves them.  Row order of the data plays no part:
  for one term, the kronecker G equals lme4's G whether the data are sorted or not.
- V: done entirely by hand, Z is built one cluster after the other, starting a new cluster whenever the
  group label changes from one row to the next: right for data sorted by the group, and wrong for data in
  any other order (a group split over several runs of rows becomes several independent clusters).

Everything here works on a fit record's `Zt`, `Lambdat`, `sigma`, `Gp`, `cnms` and `flist` (lme4's layout).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from vcheck.core.record import LmerFit


@dataclass(frozen=True)
class Term:
    """One random-effects term of a fit, located in Zt: rows `start:stop`, `nc` columns per level."""

    group: str
    cnms: tuple[str, ...]
    start: int
    stop: int

    @property
    def nc(self) -> int:
        return len(self.cnms)

    @property
    def nlevels(self) -> int:
        return (self.stop - self.start) // self.nc


def terms(fit: LmerFit) -> list[Term]:
    """The fit's random-effects terms from `cnms` and `Gp` (or, lacking Gp, from the level counts)."""
    cnms = fit._need("cnms")
    if fit.Gp is not None:
        Gp = np.asarray(fit.Gp, dtype=np.int64)
    else:
        flist = fit._need("flist")
        sizes = [len(names) * len(flist[group].categories) for group, names in cnms]
        Gp = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return [Term(str(g), tuple(names), int(Gp[i]), int(Gp[i + 1])) for i, (g, names) in enumerate(cnms)]


def lambda_lower(fit: LmerFit) -> sp.csr_matrix:
    """Lambda = Lambdat' (q x q, lower block triangular)."""
    return sp.csr_matrix(fit._need("Lambdat")).T.tocsr()


def G_lme4(fit: LmerFit) -> sp.csr_matrix:
    """lme4's random-effects covariance G = sigma^2 Lambda Lambda' (q x q, Zt's row order)."""
    L = lambda_lower(fit)
    return (float(fit._need("sigma")) ** 2 * (L @ L.T)).tocsr()


def term_covariance(fit: LmerFit, term: Term) -> np.ndarray:
    """One term's nc x nc covariance, a block of `bdiag(VarCorr(m))`: the term's first diagonal block of G."""
    G = G_lme4(fit)
    a, b = term.start, term.start + term.nc
    return np.asarray(G[a:b, a:b].toarray())


def varcorr_bdiag(fit: LmerFit) -> np.ndarray:
    """`bdiag(VarCorr(m))`: the terms' covariance matrices on a block diagonal, in term order."""
    blocks = [term_covariance(fit, t) for t in terms(fit)]
    return np.asarray(sp.block_diag(blocks).toarray()) if blocks else np.zeros((0, 0))


def kronecker_G(fit: LmerFit) -> np.ndarray | None:
    """The note's `Gm = kronecker(diag(k), bdiag(VarCorr(m)))` with k = q / ncol(bdiag); None when q is
    not a multiple of that (the recipe cannot even be formed)."""
    small = varcorr_bdiag(fit)
    q = int(fit._need("Zt").shape[0])
    m = small.shape[0]
    if m == 0 or q % m:
        return None
    return np.kron(np.eye(q // m), small)


def per_term_kronecker_G(fit: LmerFit) -> np.ndarray:
    """The right by-hand G: `bdiag(kronecker(diag(k_1), G_1), kronecker(diag(k_2), G_2), ...)`, one
    kronecker per term with k_t its number of levels, in lme4's term order (the manual recipe done right
    for several terms)."""
    blocks = [np.kron(np.eye(t.nlevels), term_covariance(fit, t)) for t in terms(fit)]
    return np.asarray(sp.block_diag(blocks).toarray()) if blocks else np.zeros((0, 0))


def term_model_matrix(fit: LmerFit, term: Term) -> tuple[np.ndarray, np.ndarray]:
    """(level code of every row, the term's model-matrix rows X_t (n x nc)), read back from Zt."""
    Zt = sp.csc_matrix(fit._need("Zt"))
    n = Zt.shape[1]
    block = Zt[term.start : term.stop, :].tocsc()
    codes = np.full(n, -1, dtype=np.int64)
    Xt = np.zeros((n, term.nc))
    coo = block.tocoo()
    codes[coo.col] = coo.row // term.nc
    Xt[coo.col, coo.row % term.nc] = coo.data
    flist = fit.flist or {}
    if term.group in flist:  # rows whose term values are all 0 have no entry in Zt: take the factor
        codes = np.asarray(flist[term.group].codes, dtype=np.int64)
    return codes, Xt


def sorted_order(codes: np.ndarray) -> np.ndarray:
    """Row order sorting the data by group (stable: rows keep their order within a group)."""
    return np.argsort(codes, kind="stable")


def is_sorted(codes: np.ndarray) -> bool:
    """True when every group's rows are contiguous (the data are arranged by group)."""
    change = np.flatnonzero(np.diff(codes) != 0)
    run_codes = np.concatenate([codes[:1], codes[change + 1]])
    return len(np.unique(run_codes)) == len(run_codes)


def runs(codes: np.ndarray) -> np.ndarray:
    """Cluster index a by-hand Z gives each row: a new cluster whenever the group label changes."""
    return np.concatenate([[0], np.cumsum(np.diff(codes) != 0)]).astype(np.int64) if len(codes) else codes


def V_lme4_rows(fit: LmerFit, rows: np.ndarray) -> np.ndarray:
    """lme4's V = sigma^2 (Z Lambda Lambda' Z' + I) restricted to `rows` (in that order), dense."""
    ZL = (sp.csc_matrix(fit._need("Zt")).T @ lambda_lower(fit)).tocsr()[rows, :]
    s2 = float(fit._need("sigma")) ** 2
    return np.asarray(s2 * (ZL @ ZL.T).toarray() + s2 * np.eye(len(rows)))


def V_recipe_rows(fit: LmerFit, term: Term, rows: np.ndarray) -> np.ndarray:
    """The by-hand V on the rows taken in the order `rows`: Z built run by run, `Gm = kronecker(diag(R), G)`.

    V[i, j] = x_i' G_t x_j when rows i and j fall in the same run of equal group labels, plus sigma^2 on
    the diagonal; zero across runs.
    """
    codes, Xt = term_model_matrix(fit, term)
    run = runs(codes[rows])
    X = Xt[rows]
    G = term_covariance(fit, term)
    same = run[:, None] == run[None, :]
    s2 = float(fit._need("sigma")) ** 2
    return np.asarray(same * (X @ G @ X.T) + s2 * np.eye(len(rows)))


def shuffled_order(n: int, seed: int = 0) -> np.ndarray:
    """A fixed random row order (numpy's default_rng(seed))."""
    return np.random.default_rng(seed).permutation(n)
