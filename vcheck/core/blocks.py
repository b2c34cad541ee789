"""The blocked Cholesky factor behind penalized least squares (MixedModels.jl's design, in numpy/scipy).

For the relative covariance factor Lambda(theta) (q x q, lme4's `t(Lambdat)`) the PLS system is

    A(theta) = Lambda' Z'Z Lambda + I_q = L L'                    (q x q, symmetric positive definite)
    H(theta) = Lambda' Z' [X r]                                   (q x (p+1))
    M(theta) = [X r]'[X r] - H' A^-1 H = R'R                      ((p+1) x (p+1), R upper triangular)

with `r = y - X b0` the OLS residual (b0 = least squares on X alone).  Shifting y by X b0 changes beta by
b0 and nothing else, but makes `r'r` the residual sum of squares instead of `y'y`, so the difference
that gives pwrss loses no digits when y has a large mean.  From R:

    RX = R[:p, :p],   beta = b0 + RX^-1 R[:p, p],   pwrss = R[p, p]^2,
    ldL2 = log det A,  ldRX2 = 2 sum log diag RX.

The q random effects are split in two blocks and permuted (any symmetric order factors A; log det A and
the solution do not depend on it):

- block 1: every term on the grouping factor with the most levels (lme4's first term).  Each data row
  belongs to exactly one of its levels, so Z1'Z1, Lambda_1 and A11 are block diagonal with one dense
  k1 x k1 block per level (k1 = the summed column counts of those terms): L11 is a stack of small dense
  factors, computed batched.
- block 2: all other terms, through the Schur complement (L21 = A21 L11^-T)

      S = A22 - L21 L21' = Lambda_2' T Lambda_2 + I,   T = Z2'Z2 - Z2'Z1 W Z1'Z2,
      W = Lambda_1 A11^-1 Lambda_1'   (block diagonal, one k1 x k1 block per level),

  and its right-hand side  H2 - L21 C1 = Lambda_2' (Z2'[X r] - Z2'Z1 W Z1'[X r]).  Forming T first
  keeps the expensive product (every pair of block-2 effects that share a level of block 1) on constant
  Z'Z values and the small array W.  S is factored dense while q2 is moderate (crossed factors fill it
  in anyway), else by sparse LU with a fill-reducing order.

Z'Z, Z'[X r] and [X r]'[X r] are computed once, and the sparse products of an evaluation run on fixed
patterns (`vcheck.core.pattern`), so an evaluation costs the factorization and little else.  For small q
(`DENSE_Q_MAX`) `DensePLS` forms A dense instead: numpy's per-call overhead outweighs any structure
there.  `make_pls` picks the kernel.  Where the fit explains nearly all of r'r, pwrss is recomputed from
the residual (see `_PLS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from vcheck.core.errors import VcheckError
from vcheck.core.pattern import Bilinear, Pattern, count_triples, sparse_times_dense
from vcheck.core.record import Design

#: A is formed and factored dense, without blocks, when q is at most this
DENSE_Q_MAX = 100
#: pwrss is recomputed from the residual when the Gram form leaves less than this fraction of r'r
PWRSS_RECHECK = 1e-3
#: the Schur complement of block 2 is factored dense up to this order, by sparse LU beyond
DENSE_SCHUR_MAX = 3000
#: fixed-pattern products enumerate at most this many scalar products (else scipy.sparse per evaluation)
MAX_TRIPLES = 30_000_000


class NotPositiveDefinite(VcheckError):
    """A factorization of the PLS system failed numerically (e.g. theta so large that X'X - RZX'RZX is
    a difference of nearly equal matrices, lme4's "Downdated VtV is not positive definite")."""


_dpotrf = sla.lapack.dpotrf
_dtrtrs = sla.lapack.dtrtrs


def _cholesky_lower(S: np.ndarray, what: str) -> np.ndarray:
    """Lower Cholesky factor by LAPACK dpotrf, reading only S's lower triangle."""
    L, info = _dpotrf(S, lower=1, clean=1, overwrite_a=1)
    if info != 0:
        raise NotPositiveDefinite(f"{what} is not positive definite (LAPACK dpotrf info={info})")
    return L


class Schur(Protocol):
    """A factored Schur complement S (q2 x q2, SPD)."""

    logdet: float

    def solve(self, b: np.ndarray) -> np.ndarray: ...

    def quad(self, b: np.ndarray) -> np.ndarray: ...

    def inverse_diagonal_blocks(self, starts: np.ndarray, size: int) -> np.ndarray: ...


class DenseSchur:
    """S = L L' (LAPACK); log det S = 2 sum log diag L.  Only S's lower triangle is read."""

    def __init__(self, S_lower: np.ndarray) -> None:
        self.L = _cholesky_lower(S_lower, "the PLS Schur complement")
        self.logdet = 2.0 * float(np.sum(np.log(np.diagonal(self.L))))

    def whiten(self, b: np.ndarray) -> np.ndarray:
        """L^-1 b."""
        x, info = _dtrtrs(self.L, b, lower=1)
        if info != 0:
            raise VcheckError(f"triangular solve failed (LAPACK dtrtrs info={info})")
        return x

    def solve(self, b: np.ndarray) -> np.ndarray:
        x, info = _dtrtrs(self.L, self.whiten(b), lower=1, trans=1)
        if info != 0:
            raise VcheckError(f"triangular solve failed (LAPACK dtrtrs info={info})")
        return x

    def quad(self, b: np.ndarray) -> np.ndarray:
        # b' S^-1 b as (L^-1 b)'(L^-1 b): one triangular solve and an exactly symmetric Gram matrix
        c = self.whiten(b)
        return c.T @ c

    def inverse_diagonal_blocks(self, starts: np.ndarray, size: int) -> np.ndarray:
        """Blocks S^-1[s:s+size, s:s+size] for each s in starts: (len(starts), size, size)."""
        Linv = self.whiten(np.eye(self.L.shape[0]))
        cols = Linv[:, starts[:, None] + np.arange(size)]  # S^-1 = Linv' Linv
        return np.einsum("kia,kib->iab", cols, cols)


class SparseSchur:
    """S = Pr' L U Pc' by SuperLU: symmetric fill-reducing order, no pivoting (S is SPD)."""

    def __init__(self, S: sp.csc_matrix) -> None:
        try:
            self.lu = spla.splu(
                sp.csc_matrix(S),
                permc_spec="MMD_AT_PLUS_A",
                diag_pivot_thresh=0.0,
                options={"SymmetricMode": True},
            )
        except RuntimeError as exc:
            raise VcheckError(f"the PLS Schur complement is singular: {exc}") from exc
        d = self.lu.U.diagonal()
        if np.any(d <= 0):
            raise NotPositiveDefinite("the PLS Schur complement is not positive definite")
        self.logdet = float(np.sum(np.log(d)))

    def solve(self, b: np.ndarray) -> np.ndarray:
        return self.lu.solve(np.asarray(b, dtype=float))

    def quad(self, b: np.ndarray) -> np.ndarray:
        Q = b.T @ self.solve(b)
        return (Q + Q.T) / 2.0

    def inverse_diagonal_blocks(self, starts: np.ndarray, size: int) -> np.ndarray:
        q2 = self.lu.shape[0]
        out = np.empty((len(starts), size, size))
        chunk = max(1, 1024 // size)
        for c0 in range(0, len(starts), chunk):
            s = starts[c0 : c0 + chunk]
            m = len(s)
            rows = (s[:, None] + np.arange(size)).ravel()
            E = np.zeros((q2, m * size))
            E[rows, np.arange(m * size)] = 1.0
            Xs = self.solve(E)[rows, :].reshape(m, size, m, size)
            out[c0 : c0 + m] = Xs[np.arange(m), :, np.arange(m), :]
        return out


def _sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a and b (np.union1d without its hashing detour)."""
    keys = np.sort(np.concatenate([a, b]))
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


def _dot_soa(X: np.ndarray, Y: np.ndarray) -> np.ndarray | float:
    """sum_m X[m] * Y[m] over the leading axis (vectors of length n); 0.0 when empty."""
    out: np.ndarray | float = 0.0
    for m in range(X.shape[0]):
        out = out + X[m] * Y[m]
    return out


def _cholesky_soa(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of small SPD matrices stored (k, k, n): one vector op per entry
    (k is a handful, n the number of levels; numpy's batched routines cost more in overhead here)."""
    k = A.shape[0]
    L = np.zeros_like(A)
    # A = Lambda' Z'Z Lambda + I >= I, so the pivots stay >= 1 for any finite theta: no check needed
    for j in range(k):
        L[j, j] = np.sqrt(A[j, j] - _dot_soa(L[j, :j], L[j, :j]))
        for i in range(j + 1, k):
            L[i, j] = (A[i, j] - _dot_soa(L[i, :j], L[j, :j])) / L[j, j]
    return L


def _inv_lower_soa(L: np.ndarray) -> np.ndarray:
    """Inverses of a stack of small lower-triangular matrices stored (k, k, n)."""
    k = L.shape[0]
    Li = np.zeros_like(L)
    for j in range(k):
        Li[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, k):
            Li[i, j] = -_dot_soa(L[i, j:i], Li[j:i, j]) / L[i, i]
    return Li


@dataclass
class Factor:
    """The PLS solution at one theta, and the pieces the conditional modes and variances reuse.

    Block 1 arrays are stored (k1, k1, nl1) ("one vector per entry"): L11 and L11inv (lower), W (the
    blocks of Lambda_1 A11^-1 Lambda_1'); C1 = L11^-1 Lambda_1' Z1'[X r] is (k1, nl1, p+1).  Block 2:
    Lt2 (values on `BlockedPLS.Lt2`), the factored S and H2 = Lambda_2'(Z2'[X r] - Z2'Z1 W Z1'[X r]).
    DensePLS leaves block 1 empty: schur factors all of A, Lt2 holds Lambda (dense) and H2 = H.
    """

    theta: np.ndarray
    lam1: np.ndarray  # (k1, k1) Lambda block of block 1, the same for every level
    L11: np.ndarray
    L11inv: np.ndarray
    C1: np.ndarray
    ldL2: float = 0.0
    ldRX2: float = 0.0
    pwrss: float = 0.0
    beta: np.ndarray | None = None  # (p,)
    RX: np.ndarray | None = None  # (p, p) upper: RX'RX = X'X - X'Z Lambda A^-1 Lambda'Z'X
    Lt2: np.ndarray | None = None
    schur: Schur | None = None
    H2: np.ndarray | None = None


def _shifted_response(design: Design) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(b0, [X r], [X r]'[X r]) with r = y - X b0 the OLS residual (module docstring: why)."""
    X = np.asarray(design.X, dtype=float)
    y = np.asarray(design.y, dtype=float)
    b0 = np.linalg.lstsq(X, y, rcond=None)[0] if X.shape[1] else np.zeros(0)
    Xr = np.column_stack([X, y - X @ b0])
    return b0, Xr, Xr.T @ Xr


class _PLS:
    """What both kernels share: the shifted response, the pieces of R, and an accurate pwrss.

    pwrss from the Gram form, R[p, p]^2 = r'r - (what the fit explains), loses digits when the random
    effects explain nearly all of r'r (sigma -> 0 with large theta, e.g. a near-saturated design); there
    (pwrss < PWRSS_RECHECK r'r) it is recomputed from the residual, ||y - X beta - Z Lambda u||^2 +
    ||u||^2, as lme4 computes it.  (beta itself is then only as good as lme4's: RX'RX is the same small
    difference; refining beta from X'e gains nothing, as e carries absolute rounding of eps |y|.)
    """

    n: int
    p: int
    q: int

    def _init_common(self, design: Design) -> None:
        self.design = design
        self.n, self.p, self.q = design.n, design.p, design.q
        self.nc = [t.nc for t in design.terms]
        self.nlevels = [t.nlevels for t in design.terms]
        self.Gp = np.asarray(design.Gp, dtype=np.int64)
        self.b0, self.Xr, self.XrXr = _shifted_response(design)
        self.Zt = sp.csc_matrix(design.Zt)

    def modes(self, f: Factor) -> np.ndarray:
        raise NotImplementedError

    def _finish(self, f: Factor, M: np.ndarray, ldL2: float) -> Factor:
        """From M = [X r]'[X r] - H'A^-1 H = R'R: RX, beta = b0 + RX^-1 R[:p, p], pwrss = R[p, p]^2,
        ldRX2 = 2 sum log diag RX."""
        p = self.p
        R, info = _dpotrf(M, lower=0, clean=1)
        if info != 0:
            raise NotPositiveDefinite(
                f"X'X - RZX'RZX is not positive definite at theta={f.theta} (LAPACK info={info})"
            )
        f.RX = RX = R[:p, :p]
        rb, info = _dtrtrs(RX, R[:p, p], lower=0)
        f.beta = self.b0 + rb
        f.ldL2 = ldL2
        f.ldRX2 = 2.0 * float(np.sum(np.log(np.diagonal(RX))))
        f.pwrss = float(R[p, p] ** 2)
        if f.pwrss < PWRSS_RECHECK * self.XrXr[p, p]:
            f.pwrss = self.residual_pwrss(f)
        return f

    def residual_pwrss(self, f: Factor) -> float:
        """pwrss = ||e||^2 + ||u||^2 with u solving A u = Lambda'Z'(y - X beta) and
        e = y - X beta - Z Lambda u, from the data (O(nnz(Zt)))."""
        assert f.beta is not None
        u = self.modes(f)
        b = self.Lambdat_T(f.theta) @ u
        e = self.Xr[:, self.p] - self.Xr[:, : self.p] @ (f.beta - self.b0) - self.Zt.T @ b
        return float(e @ e + u @ u)

    def Lambdat_T(self, theta: np.ndarray) -> sp.csr_matrix:
        """Lambda = Lambdat' at theta."""
        return sp.csr_matrix(self.design.Lambdat_at(theta).T)


def make_pls(design: Design) -> DensePLS | BlockedPLS:
    """The PLS kernel for a design: all-dense for small q (numpy's per-call overhead dominates there),
    else blocked."""
    return DensePLS(design) if design.q <= DENSE_Q_MAX else BlockedPLS(design)


class DensePLS(_PLS):
    """PLS with A = Lambda'Z'Z Lambda + I formed and factored dense: for small q, where two small matrix
    products and one LAPACK Cholesky beat any bookkeeping.  Same interface as BlockedPLS."""

    def __init__(self, design: Design) -> None:
        self._init_common(design)
        Xr = self.Xr
        Zt = sp.csr_matrix(design.Zt)
        self.ZtZ = (Zt @ Zt.T).toarray()
        self.ZtXr = np.asarray(Zt @ Xr)
        coo = sp.csc_matrix(design.Lambdat).tocoo()  # storage order: Lind's order
        Lind = np.asarray(design.Lind, dtype=np.int64)
        if coo.nnz != len(Lind):
            raise VcheckError(f"Lambdat has {coo.nnz} stored entries but Lind has {len(Lind)}")
        # Lambda = Lambdat': entry (r, c) of Lambdat is Lambda[c, r]
        self.lam_rows, self.lam_cols, self.lam_theta = coo.col, coo.row, Lind
        self.diag = np.arange(self.q) * (self.q + 1)

    def factor(self, theta: np.ndarray) -> Factor:
        theta = np.asarray(theta, dtype=float)
        Lam = np.zeros((self.q, self.q))
        Lam[self.lam_rows, self.lam_cols] = theta[self.lam_theta]
        A = Lam.T @ self.ZtZ @ Lam
        A.ravel()[self.diag] += 1.0
        schur = DenseSchur(A)
        H = Lam.T @ self.ZtXr
        empty = np.zeros((0, 0, 0))
        f = Factor(theta, np.zeros((0, 0)), empty, empty, empty, Lt2=Lam, schur=schur, H2=H)
        return self._finish(f, self.XrXr - schur.quad(H), schur.logdet)

    def modes(self, f: Factor) -> np.ndarray:
        """u (q,) solving A u = Lambda'Z'(y - X beta)."""
        assert f.beta is not None and f.schur is not None and f.H2 is not None
        w = np.concatenate([-(f.beta - self.b0), [1.0]])
        return np.asarray(f.schur.solve(f.H2 @ w))

    def inverse_diagonal_blocks(self, f: Factor) -> list[np.ndarray]:
        """Per term: (nlevels, nc, nc) diagonal blocks of A^-1."""
        assert f.schur is not None
        return [
            f.schur.inverse_diagonal_blocks(self.Gp[t] + np.arange(nl) * nc, nc)
            for t, (nc, nl) in enumerate(zip(self.nc, self.nlevels, strict=True))
        ]


class BlockedPLS(_PLS):
    """Penalized least squares for one design, factored per theta with the block structure above.

    `factor(theta)` gives the criterion pieces and beta; `modes(f)` the spherical random effects u (Zt
    order); `inverse_diagonal_blocks(f)` the per-(term, level) diagonal blocks of A^-1.
    """

    def __init__(self, design: Design) -> None:
        self._init_common(design)
        Lambdat = sp.csc_matrix(design.Lambdat)  # Lind follows its storage order; tocoo() keeps that
        Lind = np.asarray(design.Lind, dtype=np.int64)
        if Lambdat.nnz != len(Lind):
            raise VcheckError(f"Lambdat has {Lambdat.nnz} stored entries but Lind has {len(Lind)}")
        Xr = self.Xr

        self.perm, self.k1, self.nl1 = self._partition(design)
        self.q1 = self.k1 * self.nl1
        self.q2 = self.q - self.q1
        self.inv = np.empty(self.q, dtype=np.int64)
        self.inv[self.perm] = np.arange(self.q)
        Ztp = sp.csr_matrix(design.Zt)[self.perm]
        Zt1, Zt2 = Ztp[: self.q1], Ztp[self.q1 :]

        # Lambdat's stored entries in the permuted order; Lambdat[r, c] = Lambda[c, r]
        coo = Lambdat.tocoo()
        pr, pc = self.inv[coo.row], self.inv[coo.col]
        in1 = (pr < self.q1) & (pc < self.q1)
        in2 = (pr >= self.q1) & (pc >= self.q1)
        if not np.all(in1 | in2):
            raise VcheckError("Lambdat couples the primary grouping factor with other terms")
        self._setup_block1(Zt1, Xr, pr[in1], pc[in1], Lind[in1])
        if self.q2:
            self._setup_block2(Zt1, Zt2, Xr, pr[in2] - self.q1, pc[in2] - self.q1, Lind[in2])

    @staticmethod
    def _partition(design: Design) -> tuple[np.ndarray, int, int]:
        """Zt rows in factor order: block 1 level-major over all terms on the first term's factor, then
        the other terms' rows in Zt order.  Returns (perm with perm[new] = old, k1, nl1)."""
        terms, Gp = design.terms, design.Gp
        if not terms:
            raise VcheckError("the design has no random-effects terms")
        on1 = [i for i, t in enumerate(terms) if t.group == terms[0].group]
        k1 = sum(terms[i].nc for i in on1)
        nl1 = terms[0].nlevels
        block1 = np.empty(k1 * nl1, dtype=np.int64)
        offset = 0
        for i in on1:
            nc = terms[i].nc
            local = np.arange(nl1 * nc)  # Zt rows of term i are level-major: level * nc + column
            block1[(local // nc) * k1 + offset + local % nc] = Gp[i] + local
            offset += nc
        rest = [np.arange(Gp[i], Gp[i + 1]) for i in range(len(terms)) if i not in on1]
        return np.concatenate([block1, *rest]).astype(np.int64), k1, nl1

    def _setup_block1(
        self, Zt1: sp.csr_matrix, Xr: np.ndarray, pr: np.ndarray, pc: np.ndarray, t: np.ndarray
    ) -> None:
        k1, nl1, p = self.k1, self.nl1, self.p
        ZZ1 = (Zt1 @ Zt1.T).tocoo()
        if np.any(ZZ1.row // k1 != ZZ1.col // k1):
            raise VcheckError("Z'Z of the primary grouping factor is not block diagonal")
        zz1 = np.zeros((k1, k1, nl1))
        np.add.at(zz1, (ZZ1.row % k1, ZZ1.col % k1, ZZ1.row // k1), ZZ1.data)
        self.zz1 = zz1.reshape(k1 * k1, nl1)
        # Z1'[X r] level-major (nl1*k1, p+1) -> (k1, nl1*(p+1)), one row per within-level position
        self.zxr1 = np.ascontiguousarray(
            np.asarray(Zt1 @ Xr).reshape(nl1, k1, p + 1).transpose(1, 0, 2).reshape(k1, nl1 * (p + 1))
        )
        lam_idx = np.full((nl1, k1, k1), -1, dtype=np.int64)
        lam_idx[pc // k1, pc % k1, pr % k1] = t
        if np.any(lam_idx != lam_idx[0]):
            raise VcheckError("Lambda differs between levels of the primary grouping factor")
        template = lam_idx[0].ravel()
        self.lam1_pos = np.flatnonzero(template >= 0)
        self.lam1_theta = template[self.lam1_pos]
        self.diag1 = np.arange(k1) * (k1 + 1)

    def _setup_block2(
        self,
        Zt1: sp.csr_matrix,
        Zt2: sp.csr_matrix,
        Xr: np.ndarray,
        r2: np.ndarray,
        c2: np.ndarray,
        t2: np.ndarray,
    ) -> None:
        q1, q2, k1, nl1 = self.q1, self.q2, self.k1, self.nl1
        self.dense_schur = q2 <= DENSE_SCHUR_MAX
        self.Lt2 = Pattern(r2, c2, (q2, q2))
        self.Lt2_theta = t2
        self.zxr2 = np.asarray(Zt2 @ Xr)
        self.Z21 = sp.csr_matrix(Zt2 @ Zt1.T)  # Z2'Z1, constant
        self.Z21.sort_indices()
        # rank of each block-2 effect's Lambda block (term, level); the dense path keeps only block-lower T
        blk = np.concatenate([base + np.arange(n) // c for base, c, n in self._block2_blocks()])
        lower_T = blk if self.dense_schur else None
        zz22 = sp.coo_matrix(Zt2 @ Zt2.T)
        keep = np.ones(zz22.nnz, dtype=bool) if lower_T is None else lower_T[zz22.row] >= lower_T[zz22.col]
        zz_keys = zz22.row[keep].astype(np.int64) * q2 + zz22.col[keep]
        zz_vals = zz22.data[keep]
        # W = Lambda_1 A11^-1 Lambda_1' as a q1 x q1 block-diagonal pattern, entry order W.ravel() of the
        # (k1, k1, nl1) array: entry (a, b, l) sits at (l*k1 + a, l*k1 + b)
        a, b, lev = np.unravel_index(np.arange(k1 * k1 * nl1), (k1, k1, nl1))
        Wpat = Pattern((lev * k1 + a).astype(np.int64), (lev * k1 + b).astype(np.int64), (q1, q1))
        z21 = self.Z21.tocoo()
        Z21pat = Pattern(z21.row.astype(np.int64), z21.col.astype(np.int64), z21.shape)
        self.G: Bilinear | None = None
        if count_triples(Z21pat, Wpat, Z21pat) <= MAX_TRIPLES:
            self.G = Bilinear(
                Z21pat, Wpat, Z21pat, dense=False, P_values=z21.data, Q_values=z21.data, lower_by=lower_T
            )
            assert self.G.out is not None
            g_keys = self.G.out.rows * q2 + self.G.out.cols
            T_keys = _sorted_union(zz_keys, g_keys)
            self.G_pos = np.searchsorted(T_keys, g_keys)
        else:  # too many pairs to enumerate: scipy.sparse products per evaluation (pattern from Z21 Z21')
            self.Wpat = Wpat
            pat = sp.coo_matrix(self.Z21 @ self.Z21.T)
            mask = np.ones(pat.nnz, dtype=bool) if lower_T is None else lower_T[pat.row] >= lower_T[pat.col]
            T_keys = _sorted_union(zz_keys, pat.row[mask].astype(np.int64) * q2 + pat.col[mask])
        self.T_keys = T_keys
        self.T_base = np.zeros(len(T_keys))
        self.T_base[np.searchsorted(T_keys, zz_keys)] = zz_vals
        Tpat = Pattern(T_keys // q2, T_keys % q2, (q2, q2))
        self.S = Bilinear(
            self.Lt2,
            Tpat,
            self.Lt2,
            dense=self.dense_schur,
            lower_by=np.arange(q2) if self.dense_schur else None,
        )

    def _block2_blocks(self) -> list[tuple[int, int, int]]:
        """(first block id, nc, rows) of each block-2 term, in Zt order."""
        out, base = [], 0
        on1 = {i for i in range(len(self.nc)) if int(self.inv[self.Gp[i]]) < self.q1}
        for i, (nc, nl) in enumerate(zip(self.nc, self.nlevels, strict=True)):
            if i not in on1:
                out.append((base, nc, nc * nl))
                base += nl
        return out

    # --- one evaluation ------------------------------------------------------------------------------
    def factor(self, theta: np.ndarray) -> Factor:
        """Factor A(theta) and M(theta); the formulas are in the module docstring."""
        theta = np.asarray(theta, dtype=float)
        p, k1, nl1 = self.p, self.k1, self.nl1
        lam = np.zeros(k1 * k1)
        lam[self.lam1_pos] = theta[self.lam1_theta]
        lam1 = lam.reshape(k1, k1)
        if k1 == 1:  # scalar terms: every block is 1 x 1
            l2 = lam1[0, 0] ** 2
            L11 = np.sqrt(l2 * self.zz1 + 1.0).reshape(1, 1, nl1)
            L11inv = 1.0 / L11
            ld = 2.0 * float(np.sum(np.log(L11)))
            C1 = (lam1[0, 0] * L11inv[0, 0])[None, :, None] * self.zxr1.reshape(1, nl1, p + 1)
        else:
            # vec(lam' Z'Z_l lam) = (lam kron lam)' vec(Z'Z_l), for every level l at once
            kron = (lam1[:, None, :, None] * lam1[None, :, None, :]).reshape(k1 * k1, k1 * k1)
            A11 = kron.T @ self.zz1
            A11[self.diag1] += 1.0
            L11 = _cholesky_soa(A11.reshape(k1, k1, nl1))
            L11inv = _inv_lower_soa(L11)
            diag = L11[0, 0]
            for j in range(1, k1):
                diag = diag * L11[j, j]
            ld = 2.0 * float(np.sum(np.log(diag)))  # log det of each block from the product of pivots
            H1 = (lam1.T @ self.zxr1).reshape(k1, nl1, p + 1)
            C1 = np.empty_like(H1)
            for a in range(k1):  # C1[a] = sum_b L11inv[a, b] H1[b] (b <= a), per level
                C1[a] = _dot_soa(L11inv[a, : a + 1, :, None], H1[: a + 1])
        C1f = C1.reshape(k1 * nl1, p + 1)
        Q = C1f.T @ C1f
        f = Factor(theta, lam1, L11, L11inv, C1)
        if self.q2:
            self._block2(f, theta)
            assert f.schur is not None and f.H2 is not None
            ld += f.schur.logdet
            Q = Q + f.schur.quad(f.H2)

        return self._finish(f, self.XrXr - Q, ld)

    def W_blocks(self, f: Factor) -> np.ndarray:
        """W_l = Lambda_1 A11_l^-1 Lambda_1' = D_l D_l' with D_l = Lambda_1 L11_l^-T, stored (k1, k1, nl1)."""
        if self.k1 == 1:
            return (f.lam1[0, 0] * f.L11inv) ** 2
        D = np.tensordot(f.lam1, f.L11inv, axes=([1], [1]))  # D[a, b, l] = sum_c lam[a, c] L11inv[b, c, l]
        return np.einsum("acn,bcn->abn", D, D)

    def _block2(self, f: Factor, theta: np.ndarray) -> None:
        """Factor S = Lambda_2' T Lambda_2 + I and form block 2's right-hand side (module docstring)."""
        q1, q2, k1, nl1, p = self.q1, self.q2, self.k1, self.nl1, self.p
        f.Lt2 = Lt2v = theta[self.Lt2_theta]
        W = self.W_blocks(f)
        T = self.T_base.copy()
        if self.G is not None:
            T[self.G_pos] -= self.G(W.ravel())
        else:
            Wm = sp.csr_matrix((W.ravel(), (self.Wpat.rows, self.Wpat.cols)), shape=(q1, q1))
            G = sp.coo_matrix(self.Z21 @ Wm @ self.Z21.T)
            keys = G.row.astype(np.int64) * q2 + G.col
            pos = np.searchsorted(self.T_keys, keys)
            ok = (pos < len(self.T_keys)) & (self.T_keys[np.minimum(pos, len(self.T_keys) - 1)] == keys)
            T[pos[ok]] -= G.data[ok]
        S = self.S(Lt2v, T, Lt2v)
        # W Z1'[X r], level-major (q1, p+1)
        WZ = np.einsum("abn,bnj->naj", W, self.zxr1.reshape(k1, nl1, p + 1)).reshape(q1, p + 1)
        f.H2 = sparse_times_dense(self.Lt2, Lt2v, self.zxr2 - self.Z21 @ WZ)
        if self.dense_schur:
            S = S.reshape(q2, q2)
            S[np.diag_indices(q2)] += 1.0
            f.schur = DenseSchur(S)
        else:
            assert self.S.out is not None
            o = self.S.out
            Sm = sp.csc_matrix((S, (o.rows, o.cols)), shape=(q2, q2)) + sp.identity(q2, format="csc")
            f.schur = SparseSchur(sp.csc_matrix(Sm))

    # --- after the fit -------------------------------------------------------------------------------
    def L21_matrix(self, f: Factor) -> sp.csr_matrix:
        """L21 = Lambda_2' Z2'Z1 Lambda_1 L11^-T (q2 x q1, sparse)."""
        k1, nl1 = self.k1, self.nl1
        assert f.Lt2 is not None
        Lt2 = sp.csr_matrix((f.Lt2, (self.Lt2.rows, self.Lt2.cols)), shape=(self.q2, self.q2))
        D = np.tensordot(f.lam1, f.L11inv, axes=([1], [1])).transpose(2, 0, 1)  # (nl1, k1, k1)
        Dm = sp.bsr_matrix(
            (D, np.arange(nl1), np.arange(nl1 + 1)), shape=(self.q1, self.q1), blocksize=(k1, k1)
        )
        return sp.csr_matrix(Lt2 @ self.Z21 @ Dm)

    def modes(self, f: Factor) -> np.ndarray:
        """Spherical random effects u (q,) in Zt's row order, solving A u = Lambda'Z'(y - X beta)."""
        assert f.beta is not None
        k1, nl1 = self.k1, self.nl1
        w = np.concatenate([-(f.beta - self.b0), [1.0]])  # [X r] w = y - X beta
        c1 = f.C1 @ w  # (k1, nl1) = L11^-1 Lambda_1' Z1'(y - X beta)
        u = np.empty(self.q)
        if self.q2:
            assert f.schur is not None and f.H2 is not None
            u2 = f.schur.solve(f.H2 @ w)
            u[self.q1 :] = u2
            c1 = c1 - (self.L21_matrix(f).T @ u2).reshape(nl1, k1).T
        # u1 = L11^-T c1, per level
        u[: self.q1] = np.einsum("abn,an->nb", f.L11inv, c1).ravel()
        out = np.empty(self.q)
        out[self.perm] = u
        return out

    def inverse_diagonal_blocks(self, f: Factor) -> list[np.ndarray]:
        """Per term: (nlevels, nc, nc) diagonal blocks of A^-1 for that term's levels, in level order."""
        k1, nl1 = self.k1, self.nl1
        # (A^-1)_11 = L11^-T (I + L21' S^-1 L21) L11^-1, per level block
        inner = np.broadcast_to(np.eye(k1), (nl1, k1, k1)).copy()
        if self.q2:
            inner += self._gram_blocks(f)
        Li = f.L11inv.transpose(2, 0, 1)  # (nl1, k1, k1)
        B1 = np.swapaxes(Li, 1, 2) @ inner @ Li
        out: list[np.ndarray] = []
        for t, (nc, nl) in enumerate(zip(self.nc, self.nlevels, strict=True)):
            first = int(self.inv[self.Gp[t]])
            if first < self.q1:
                off = first % k1
                out.append(np.ascontiguousarray(B1[:, off : off + nc, off : off + nc]))
            else:
                assert f.schur is not None
                starts = self.inv[self.Gp[t] + np.arange(nl) * nc] - self.q1
                out.append(f.schur.inverse_diagonal_blocks(starts, nc))
        return out

    def _gram_blocks(self, f: Factor) -> np.ndarray:
        """Per level l of block 1: L21_l' S^-1 L21_l (k1 x k1), in column chunks to bound memory."""
        assert f.schur is not None
        L21 = sp.csc_matrix(self.L21_matrix(f))
        k1, nl1, q2 = self.k1, self.nl1, self.q2
        out = np.empty((nl1, k1, k1))
        per = max(1, (1 << 22) // max(q2, 1) // k1)  # levels per chunk: ~32 MB of dense columns
        for l0 in range(0, nl1, per):
            l1 = min(nl1, l0 + per)
            cols = L21[:, l0 * k1 : l1 * k1].toarray()
            if isinstance(f.schur, DenseSchur):
                Wc = f.schur.whiten(cols).reshape(q2, l1 - l0, k1)
                out[l0:l1] = np.einsum("kla,klb->lab", Wc, Wc)
            else:
                Y = f.schur.solve(cols).reshape(q2, l1 - l0, k1)
                G = np.einsum("kla,klb->lab", cols.reshape(q2, l1 - l0, k1), Y)
                out[l0:l1] = (G + np.swapaxes(G, 1, 2)) / 2.0
        return out
