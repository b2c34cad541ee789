"""R's `contr.poly(k)`, bit for bit: orthonormal polynomial contrasts in the scores 1..k.

R takes the LINPACK QR of the centred Vandermonde matrix V = QR and uses Q diag(R) with unit columns,
dropping the constant; columns are named `.L .Q .C ^4 ...`.
"""

from __future__ import annotations

import math

import numpy as np

from vcheck.core.linpack import dqrdc2, qr_qy
from vcheck.core.rmath import r_pow


def contr_poly(k: int) -> tuple[np.ndarray, list[str]]:
    """`contr.poly(k)`: orthonormal polynomials in scores 1..k, columns `.L .Q .C ^4 ...`.

    R takes the QR of the centred Vandermonde matrix V = QR (LINPACK) and uses Q diag(R) with unit
    columns.  We repeat R's arithmetic step by step (sequential sums as reference BLAS does them), so
    the values are R's to the last bit.
    """
    scores = np.arange(1, k + 1, dtype=float)
    y = scores - scores.mean()
    vander = np.ones((k, k))
    for j in range(1, k):
        # R's outer(y, 0:(k-1), "^"): y * y for the square, the C library's pow() otherwise (numpy's
        # vectorised power can differ from it in the last bit)
        vander[:, j] = r_pow(y, np.full(k, float(j)))
    qr, qraux, rank, _ = dqrdc2(vander, 1e-7, sequential=True)
    raw = qr_qy(qr, qraux, rank, np.diag(np.diag(qr)), sequential=True)
    # R's sum(): squares in double, accumulated in long double
    norms = np.array([math.sqrt(float(sum(np.longdouble(v * v) for v in col))) for col in raw.T.tolist()])
    contr = raw / norms[None, :]
    names = [".L", ".Q", ".C"] + [f"^{i}" for i in range(4, k)]
    return contr[:, 1:], names[: k - 1]
