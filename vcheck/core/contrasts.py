"""R's contrast matrices, for `contrasts = list(f = "contr.sum")` (lmer's `contrasts` argument).

Each function gives (k x (k-1) matrix, column suffixes) for a factor with levels l_1..l_k; model.matrix
names X's columns variable + suffix:

- contr.treatment: columns e_2..e_k (baseline l_1), suffixes l_2..l_k
- contr.SAS:       contr.treatment with the LAST level as baseline, suffixes l_1..l_{k-1}
- contr.sum:       rows l_1..l_{k-1} the identity, row l_k all -1, suffixes 1..k-1
- contr.helmert:   column j has -1 in rows 1..j, j in row j+1, 0 below, suffixes 1..k-1
- contr.poly:      orthonormal polynomials in scores 1..k, suffixes .L .Q .C ^4 ...

lmer passes `contrasts` to model.matrix for X only; random-effects terms keep R's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vcheck.core.contr_poly import contr_poly  # R's arithmetic, bit for bit
from vcheck.core.errors import DataError

CONTRASTS = ("contr.treatment", "contr.sum", "contr.helmert", "contr.poly", "contr.SAS")


def contr_treatment(levels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """`contr.treatment(levels)`: (nlevels, nlevels-1), the first level is the baseline."""
    k = len(levels)
    return np.eye(k)[:, 1:], list(levels[1:])


def contr_SAS(levels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    k = len(levels)
    return np.eye(k)[:, :-1], list(levels[:-1])


def contr_sum(levels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    k = len(levels)
    m = np.vstack([np.eye(k - 1), -np.ones((1, k - 1))])
    return m, [str(j) for j in range(1, k)]


def contr_helmert(levels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    k = len(levels)
    m = np.zeros((k, k - 1))
    for j in range(k - 1):
        m[: j + 1, j] = -1.0
        m[j + 1, j] = float(j + 1)
    return m, [str(j) for j in range(1, k)]


def _contr_poly_levels(levels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    return contr_poly(len(levels))


_BY_NAME = {
    "contr.treatment": contr_treatment,
    "contr.SAS": contr_SAS,
    "contr.sum": contr_sum,
    "contr.helmert": contr_helmert,
    "contr.poly": _contr_poly_levels,
}


def check_contrasts(contrasts: Mapping[str, str] | None) -> dict[str, str]:
    """Validate lmer's `contrasts` mapping {factor name: contrast name}; returns a plain dict."""
    if contrasts is None:
        return {}
    if not isinstance(contrasts, Mapping):
        raise DataError(
            f"contrasts must be a mapping from factor name to a contrast name, not {type(contrasts).__name__}"
        )
    out = {}
    for name, kind in contrasts.items():
        if kind not in _BY_NAME:
            raise DataError(
                f"contrasts for {name!r}: {kind!r} is not one of {', '.join(CONTRASTS)} "
                "(vcheck takes contrasts by name; contrast matrices are not supported)"
            )
        out[str(name)] = str(kind)
    return out


def contrast_matrix(kind: str, levels: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """The contrast matrix `kind` (one of CONTRASTS) for these levels, with its column suffixes."""
    return _BY_NAME[kind](levels)
