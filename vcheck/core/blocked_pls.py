"""The blocked PLS kernel (MixedModels.jl's blocked Cholesky, in numpy/scipy), for larger q.

The q random effects are split in two blocks and permuted (any symmetric order factors A; log det A and
the solution do not depend on it):

- block 1: every term on the grouping factor with the most levels (lme4's first term).  Each data row
  belongs to exactly one of its levels, so Z1'Z1, Lambda_1 and A11 are block diagonal with one dense
  k1 x k1 block per level (k1 = the summed column counts of those terms): L11 is a stack of small dense
  factors (`vcheck.core.batched`).
- block 2: all other terms, through the Schur complement (L21 = A21 L11^-T)

      S = A22 - L21 L21' = Lambda_2' T Lambda_2 + I,   T = Z2'Z2 - Z2'Z1 W Z1'Z2,
      W = Lambda_1 A11^-1 Lambda_1'   (block diagonal, one k1 x k1 block per level),

  and its right-hand side  H2 - L21 C1 = Lambda_2' (Z2'[X r] - Z2'Z1 W Z1'[X r]).  Forming T first
  keeps the expensive product (every pair of block-2 effects that share a level of block 1) on constant
  Z'Z values and the small array W.  S is factored dense (LAPACK) while it is small or nearly full
  (crossed factors fill it in), else by a sparse Cholesky with a fill-reducing order
  (`vcheck.core.schur`).  A dense S of scalar terms whose graph a separator splits (InstEval's
  lecturers, by department) is factored block by block in that order (`vcheck.core.bordered`).

Z'Z, Z'[X r] and [X r]'[X r] are computed once, and the sparse products of an evaluation run on fixed
patterns (`vcheck.core.pattern`), so an evaluation costs the factorization and little else.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from vcheck.core import bordered
from vcheck.core.batched import W_blocks, dot_soa, factor_uniform_blocks
from vcheck.core.errors import VcheckError
from vcheck.core.pattern import Bilinear, Pattern, count_triples, scale_scatter, sparse_times_dense
from vcheck.core.pls import Factor, PLSBase
from vcheck.core.record import Design
from vcheck.core.schur import DenseSchur, FixedCSC, SparseSchur, cholmod_available, sparse_cholesky_flops

#: the Schur complement of block 2 is factored dense up to this order at most (sparse beyond)
DENSE_SCHUR_MAX = 3000
#: ... and always dense up to this order (a sparse factorization's fixed cost is not worth it there)
SPARSE_SCHUR_MIN = 300
#: CHOLMOD is chosen when its work is under 1/SPARSE_GAIN of the dense Cholesky's (q2^3 / 3 flops)
SPARSE_GAIN = 20.0
#: Z2'Z1 is held dense (G by GEMM) when it has at most this many entries ...
DENSE_Z21_MAX = 4_000_000
#: ... and its GEMM's multiply-adds are under DENSE_G_GAIN times the fixed-pattern product's terms
DENSE_G_GAIN = 50
#: fixed-pattern products enumerate at most this many scalar products (else scipy.sparse per evaluation)
MAX_TRIPLES = 30_000_000


def _sorted_union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sorted distinct values of a and b (np.union1d without its hashing detour)."""
    keys = np.sort(np.concatenate([a, b]))
    return keys[np.concatenate([[True], keys[1:] != keys[:-1]])] if len(keys) else keys


class BlockedPLS(PLSBase):
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
        self.Lt2 = Pattern(r2, c2, (q2, q2))
        self.Lt2_theta = t2
        self.zxr2 = np.asarray(Zt2 @ Xr)
        self.Z21 = sp.csr_matrix(Zt2 @ Zt1.T)  # Z2'Z1, constant
        self.Z21.sort_indices()
        self.schur_kind = self._schur_kind(Zt2)
        self.dense_schur = self.schur_kind == "dense"
        # rank of each block-2 effect's Lambda block (term, level); dense and CHOLMOD read only the lower
        # triangle of S, so T is needed only block-lower
        blk = np.concatenate([base + np.arange(n) // c for base, c, n in self._block2_blocks()])
        lower_T = None if self.schur_kind == "superlu" else blk
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
        self.Z21_dense: np.ndarray | None = None
        triples = count_triples(Z21pat, Wpat, Z21pat)
        if self.dense_schur and q2 * q1 <= DENSE_Z21_MAX and q2 * q2 * q1 * k1 < DENSE_G_GAIN * triples:
            # Z2'Z1 nearly full (few block-2 effects, each meeting most levels of block 1): one GEMM
            self.Z21_dense = self.Z21.toarray()
            self.Wpat = Wpat
            pat = sp.coo_matrix(self.Z21 @ self.Z21.T)
            assert lower_T is not None
            mask = lower_T[pat.row] >= lower_T[pat.col]
            T_keys = _sorted_union(zz_keys, pat.row[mask].astype(np.int64) * q2 + pat.col[mask])
        elif triples <= MAX_TRIPLES:
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
        # scalar terms only: Lambda_2 is diagonal (l), so S = diag(l) T diag(l) entry by entry on T's
        # pattern, with the same products in the same order as the general Bilinear
        self.S_diagonal = self.dense_schur and np.array_equal(r2, c2) and len(np.unique(r2)) == q2
        self.S: Bilinear | None = None
        self.bordered: bordered.Plan | None = None
        if self.S_diagonal:
            self.T_rows, self.T_cols = Tpat.rows, Tpat.cols
            self.T_keys_F = Tpat.cols.astype(np.int64) * q2 + Tpat.rows  # S column-major, for LAPACK
            if q2 > SPARSE_SCHUR_MIN:  # a separator may split S into a block arrowhead
                self.bordered = bordered.plan(Tpat.rows, Tpat.cols, q2)
            if self.bordered is not None:
                self.T_pos_B = self.bordered.positions(Tpat.rows, Tpat.cols)
                self.diag_pos_B = self.bordered.diagonal()
        else:
            self.S = Bilinear(
                self.Lt2,
                Tpat,
                self.Lt2,
                dense=self.dense_schur,
                lower_by=None if lower_T is None else np.arange(q2),
                fortran=True,
            )
        self._analysis = None
        if not self.dense_schur:
            assert self.S is not None and self.S.out is not None
            self.S_csc = FixedCSC(self.S.out.rows, self.S.out.cols, q2)

    def _schur_kind(self, Zt2: sp.csr_matrix) -> str:
        """How to factor S: "dense" (LAPACK) while q2 <= DENSE_SCHUR_MAX and S is small or fills in;
        "cholmod" where a sparse Cholesky needs under 1/SPARSE_GAIN of the dense work; "superlu" past
        DENSE_SCHUR_MAX without CHOLMOD."""
        q2 = self.q2
        if not cholmod_available():
            return "dense" if q2 <= DENSE_SCHUR_MAX else "superlu"
        if q2 <= DENSE_SCHUR_MAX and q2 <= SPARSE_SCHUR_MIN:
            return "dense"
        if q2 > DENSE_SCHUR_MAX:
            return "cholmod"
        # S's pattern: |Lambda_2|' (|Z2'Z2| + |Z2'Z1| |Z2'Z1|') |Lambda_2|
        ones = lambda M: sp.csr_matrix((np.ones(M.nnz), M.indices, M.indptr), shape=M.shape)  # noqa: E731
        Z21 = ones(self.Z21)
        T = ones(sp.csr_matrix(Zt2 @ Zt2.T)) + Z21 @ Z21.T
        L2 = sp.csr_matrix((np.ones(self.Lt2.nnz), (self.Lt2.rows, self.Lt2.cols)), shape=(q2, q2))
        S = sp.csc_matrix(L2.T @ T @ L2)
        if S.nnz > q2 * q2 / 4:  # crossed factors: S is as good as full already
            return "dense"
        sparse = sparse_cholesky_flops(S)
        return "cholmod" if SPARSE_GAIN * sparse < q2**3 / 3.0 else "dense"

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
        L11, L11inv, ld, C1 = factor_uniform_blocks(lam1, self.zz1, self.zxr1, nl1)
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
        """W_l = Lambda_1 A11_l^-1 Lambda_1' per level of block 1, stored (k1, k1, nl1)."""
        return W_blocks(f.lam1, f.L11inv)

    def _block2(self, f: Factor, theta: np.ndarray) -> None:
        """Factor S = Lambda_2' T Lambda_2 + I and form block 2's right-hand side (module docstring)."""
        q1, q2, k1, nl1, p = self.q1, self.q2, self.k1, self.nl1, self.p
        f.Lt2 = Lt2v = theta[self.Lt2_theta]
        W = self.W_blocks(f)
        T = self.T_base.copy()
        if self.Z21_dense is not None:  # G = Z21 W Z21' by one GEMM (W block diagonal, applied per level)
            Z = self.Z21_dense
            if k1 == 1:
                Y = Z * W.ravel()
            else:  # Y[:, l, b] = sum_a Z[:, l, a] W_l[a, b], one vector op per (a, b)
                Z3 = Z.reshape(q2, nl1, k1)
                Y = np.empty_like(Z3)
                for b in range(k1):
                    Y[:, :, b] = dot_soa(np.moveaxis(Z3, 2, 0), W[:, b, None, :])
            T -= (Y.reshape(q2, q1) @ Z.T).ravel()[self.T_keys]
        elif self.G is not None:
            T[self.G_pos] -= self.G(W.ravel())
        else:
            Wm = sp.csr_matrix((W.ravel(), (self.Wpat.rows, self.Wpat.cols)), shape=(q1, q1))
            G = sp.coo_matrix(self.Z21 @ Wm @ self.Z21.T)
            keys = G.row.astype(np.int64) * q2 + G.col
            pos = np.searchsorted(self.T_keys, keys)
            ok = (pos < len(self.T_keys)) & (self.T_keys[np.minimum(pos, len(self.T_keys) - 1)] == keys)
            T[pos[ok]] -= G.data[ok]
        if self.S is None:
            lam2 = np.zeros(q2)
            lam2[self.Lt2.rows] = Lt2v
            if self.bordered is not None:  # S's block arrowhead only, in the bordered order, plus I
                S = scale_scatter(self.bordered.size, self.T_pos_B, lam2, T, self.T_rows, self.T_cols)
                S[self.diag_pos_B] += 1.0
            else:
                S = scale_scatter(q2 * q2, self.T_keys_F, lam2, T, self.T_rows, self.T_cols)
        else:
            S = self.S(Lt2v, T, Lt2v)
        # W Z1'[X r], level-major (q1, p+1)
        Z3 = self.zxr1.reshape(k1, nl1, p + 1)
        WZ3 = np.empty((nl1, k1, p + 1))
        for a in range(k1):  # WZ[l, a] = sum_b W_l[a, b] Z1'[X r][l, b], one vector op per (a, b)
            WZ3[:, a, :] = dot_soa(W[a, :, :, None], Z3)
        WZ = WZ3.reshape(q1, p + 1)
        f.H2 = sparse_times_dense(self.Lt2, Lt2v, self.zxr2 - self.Z21 @ WZ)
        if self.bordered is not None:
            f.schur = bordered.BorderedSchur(self.bordered, S)
        elif self.dense_schur:
            S2 = S.reshape(q2, q2).T  # S is column-major (T_keys_F, Bilinear's fortran): no copy in LAPACK
            S2[np.diag_indices(q2)] += 1.0
            f.schur = DenseSchur(S2)
        else:
            f.schur = schur = SparseSchur(self.S_csc.plus_identity(S), analysis=self._analysis)
            self._analysis = schur.analysis

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
            if isinstance(f.schur, DenseSchur | bordered.BorderedSchur):
                Wc = f.schur.whiten(cols).reshape(q2, l1 - l0, k1)
                out[l0:l1] = np.einsum("kla,klb->lab", Wc, Wc)
            else:
                Y = f.schur.solve(cols).reshape(q2, l1 - l0, k1)
                G = np.einsum("kla,klb->lab", cols.reshape(q2, l1 - l0, k1), Y)
                out[l0:l1] = (G + np.swapaxes(G, 1, 2)) / 2.0
        return out
