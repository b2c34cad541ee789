"""The records that carry a model between vcheck's stages, whoever produced it.

`Design` is what `lFormula` returns (lme4's `lFormula()` / `getME` vocabulary); `LmerFit` is one fitted
model, produced by vcheck's own `lmer`, by lme4 through `vcheck.reference.lmer`, or by an adapter.  A
quantity an implementation cannot give stays `None` and comparisons report it as "not available".

Conventions (fixed for every producer):
- `Lind` is 0-based: `Lambdat.data[k] = theta[Lind[k]]` with `Lambdat` in CSC storage, sorted indices.
- `Zt` is q x n, CSC; its columns are the rows of the data after dropping NA rows, in the data's order.
- `Gp` has length (number of terms + 1): term i owns rows `Gp[i]:Gp[i+1]` of Zt.
- `cnms` is a list of (group name, column names) per term, in lme4's term order (names can repeat).
- `flist` maps each distinct grouping factor name to a `pandas.Categorical` of length n whose
  categories are in R's level order; `terms[i].group` names the flist entry term i uses.
- `weights` (prior weights) and `offset` are arrays of length n over the rows used, or None for unit
  weights and a zero offset: V = sigma^2 (Z Lambda Lambda' Z' + W^-1), W = diag(weights), and
  E[y] = offset + X beta.
- `na_action` is what the model was fitted with; `frame_index` the labels of the rows after subset=
  and before NA rows were dropped, to which fitted()/residuals() pad under "na.exclude".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from vcheck.core.errors import NotAvailableError

if TYPE_CHECKING:
    from scipy.sparse.linalg import LinearOperator


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term `(cnms | group)` after lme4's expansion and reordering.

    Its block of Zt has `nlevels * len(cnms)` rows, level-major; its relative covariance factor is the
    lower-triangular `nc x nc` matrix filled column-wise from `theta[theta_slice]`.
    """

    group: str  # grouping factor name as lme4 prints it, e.g. "Subject", "tch:sch"
    cnms: tuple[str, ...]  # column names of the term's model matrix, e.g. ("(Intercept)", "Days")
    levels: tuple[str, ...]  # grouping levels in R's order (as strings)
    theta_slice: tuple[int, int]  # [start, stop) into theta

    @property
    def nc(self) -> int:
        return len(self.cnms)

    @property
    def nlevels(self) -> int:
        return len(self.levels)


@dataclass
class Design:
    """lme4's `lFormula(formula, data)` in Python: y = X beta + Z b + e, b = Lambda u.

    X: (n, p) float, X_names: R's column names (after the rank drop); y: (n,).
    Zt: (q, n) CSC; Lambdat: (q, q) CSC at `theta`; Lind: (nnz(Lambdat),) 0-based into theta.
    weights: prior weights w (n,) or None (all 1); offset: (n,) or None (all 0).  The model is
    y = offset + X beta + Z b + e with e ~ N(0, sigma^2 W^-1), W = diag(w).
    """

    formula: str
    X: np.ndarray
    X_names: list[str]
    y: np.ndarray
    Zt: sp.csc_matrix
    Lambdat: sp.csc_matrix
    Lind: np.ndarray
    theta: np.ndarray
    lower: np.ndarray
    terms: list[RandomTerm]
    flist: dict[str, pd.Categorical]
    row_index: pd.Index  # labels of the data rows used (NA rows dropped), in data order
    n_na_dropped: int = 0
    dropped_columns: list[str] = field(default_factory=list)  # X columns dropped as rank deficient
    messages: list[str] = field(default_factory=list)
    weights: np.ndarray | None = None  # prior weights w (n,), None = all 1: residual variance sigma^2 / w
    offset: np.ndarray | None = None  # offset (n,), None = 0: E[y] = offset + X beta
    na_action: str = "na.omit"  # "na.omit", "na.exclude" or "na.fail"
    frame_index: pd.Index | None = None  # labels of the rows after subset=, before NA rows are dropped

    @property
    def n(self) -> int:
        return int(self.X.shape[0])

    @property
    def p(self) -> int:
        return int(self.X.shape[1])

    @property
    def q(self) -> int:
        return int(self.Zt.shape[0])

    @property
    def cnms(self) -> list[tuple[str, list[str]]]:
        return [(t.group, list(t.cnms)) for t in self.terms]

    @property
    def Gp(self) -> np.ndarray:
        sizes = [t.nc * t.nlevels for t in self.terms]
        return np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)

    def Lambdat_at(self, theta: np.ndarray) -> sp.csc_matrix:
        """Lambdat with its non-zeros set from theta: `Lambdat.data = theta[Lind]`."""
        L = self.Lambdat.copy()
        L.data = np.asarray(theta, dtype=float)[self.Lind]
        return L


@dataclass
class LmerFit:
    """One fitted linear mixed model, in lme4's vocabulary.  Fields an implementation cannot give are None.

    varcorr is `as.data.frame(VarCorr(fit))`: columns grp, var1, var2 (None for variances), vcov, sdcor,
    the residual row last with grp "Residual".  ranef maps group name -> DataFrame (levels x cnms) of
    conditional modes; condVar maps group name -> array (nlevels, nc, nc) of conditional variances.
    """

    source: str  # "vcheck", "lme4", "statsmodels", ...
    formula: str
    REML: bool
    n: int | None = None
    X: np.ndarray | None = None
    X_names: list[str] | None = None
    y: np.ndarray | None = None
    Zt: sp.csc_matrix | None = None
    Lambdat: sp.csc_matrix | None = None  # at the fitted theta
    Lind: np.ndarray | None = None
    theta: np.ndarray | None = None
    lower: np.ndarray | None = None
    cnms: list[tuple[str, list[str]]] | None = None
    flist: dict[str, pd.Categorical] | None = None
    Gp: np.ndarray | None = None
    beta: pd.Series | None = None  # named by X_names
    sigma: float | None = None
    criterion: float | None = None  # REML criterion or ML deviance, as lme4 reports it
    logLik: float | None = None
    vcov: pd.DataFrame | None = None  # vcov(beta), X_names x X_names
    varcorr: pd.DataFrame | None = None
    ranef: dict[str, pd.DataFrame] | None = None
    condVar: dict[str, np.ndarray] | None = None
    singular: bool | None = None
    optinfo: dict[str, Any] = field(default_factory=dict)  # feval, message, restarted, ...
    versions: dict[str, str] = field(default_factory=dict)  # R, lme4, locale, vcheck, ...
    n_na_dropped: int = 0
    row_index: pd.Index | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    weights: np.ndarray | None = None  # prior weights w (n,), None = all 1
    offset: np.ndarray | None = None  # offset (n,), None = 0
    mu: np.ndarray | None = None  # fitted values offset + X beta + Z b (n,), lme4's resp$mu
    na_action: str = "na.omit"  # "na.exclude": fitted() and residuals() padded with NA
    frame_index: pd.Index | None = None  # labels of the rows after subset=, before NA rows are dropped

    # --- fitted values and residuals (R's fitted() / residuals(), naresid() padding) ----------------------
    def fitted(self) -> pd.Series:
        """Fitted values mu = offset + X beta + Z b, one per row used, labelled by the data's index;
        with na_action "na.exclude" one per row of the (subset) data, NaN at the rows dropped for NA."""
        return self._pad(np.asarray(self._need("mu"), dtype=float), "fitted")

    def residuals(self) -> pd.Series:
        """Response residuals y - mu (lme4's default type for lmer), padded as fitted() is."""
        y = np.asarray(self._need("y"), dtype=float)
        return self._pad(y - np.asarray(self._need("mu"), dtype=float), "residuals")

    def _pad(self, values: np.ndarray, name: str) -> pd.Series:
        index = self.row_index if self.row_index is not None else pd.RangeIndex(len(values))
        out = pd.Series(values, index=index, name=name)
        if self.na_action == "na.exclude" and self.frame_index is not None:
            out = out.reindex(self.frame_index)
        return out

    # --- covariance views (vcheck.core.covariance does the work) -------------------------------------------
    @property
    def G(self) -> sp.csc_matrix:
        """G = sigma^2 Lambda Lambda' (q x q, sparse, in Zt's row order)."""
        import vcheck.core.covariance as covariance

        return covariance.G(self._need("Lambdat"), self._need("sigma"))

    def V(self) -> sp.csc_matrix:
        """V = Z G Z' + sigma^2 W^-1 (n x n, sparse, data row order; W = diag(prior weights))."""
        import vcheck.core.covariance as covariance

        return covariance.V(
            self._need("Zt"), self._need("Lambdat"), self._need("sigma"), weights=self.weights
        )

    def V_blocks(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """V's diagonal blocks for the independent clusters: [(row indices, dense block), ...]."""
        import vcheck.core.covariance as covariance

        return covariance.V_blocks(
            self._need("Zt"), self._need("Lambdat"), self._need("sigma"), weights=self.weights
        )

    def V_operator(self) -> LinearOperator:
        """V as a LinearOperator: v -> sigma^2 (Z Lambda Lambda' Z' v + W^-1 v), never formed."""
        import vcheck.core.covariance as covariance

        return covariance.V_operator(
            self._need("Zt"), self._need("Lambdat"), self._need("sigma"), weights=self.weights
        )

    def gls_beta(self) -> pd.Series:
        """The seed's getFE: (X' V^-1 X)^-1 X' V^-1 (y - offset), through V's blocks."""
        import vcheck.core.covariance as covariance

        b = covariance.gls_beta(
            self._need("X"),
            self._need("y"),
            self._need("Zt"),
            self._need("Lambdat"),
            self._need("sigma"),
            weights=self.weights,
            offset=self.offset,
        )
        return pd.Series(b, index=self._need("X_names"))

    def _need(self, name: str) -> Any:
        value = getattr(self, name)
        if value is None:
            raise NotAvailableError(
                f"{self.source} fit record has no {name!r}: not available "
                "(the implementation did not report it)"
            )
        return value
