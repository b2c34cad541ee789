"""LINPACK's QR as R's `qr()` runs it (dqrdc2 with limited pivoting) and `qr.qy()` / `qr.qty()` (dqrsl).

Used by model.matrix's rank check, contr.poly, poly() and ns(): R calls these, so we repeat their
arithmetic (optionally summing left to right as reference BLAS does, for bit-exact agreement).
"""

from __future__ import annotations

import math

import numpy as np


def _dot(a: np.ndarray, b: np.ndarray, sequential: bool) -> float:
    """BLAS ddot; `sequential` sums left to right as reference BLAS does (bit-exact with R)."""
    if not sequential:
        return float(a @ b)
    total = 0.0
    for u, v in zip(a.tolist(), b.tolist(), strict=True):
        total += u * v
    return total


def dqrdc2(
    X: np.ndarray, tol: float = 1e-7, sequential: bool = False
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """LINPACK dqrdc2 (R's default `qr()`): Householder QR in column order with limited pivoting.

    A column whose remaining norm falls below `tol` times its original norm is moved to the end and
    not used, so the independent columns keep their order.  Returns (qr, qraux, rank, pivot) as R's
    `qr()` does (pivot 0-based; pivot[:rank] are the columns kept).
    """
    x = np.array(X, dtype=float, order="F", copy=True)
    n, p = x.shape
    pivot = np.arange(p)
    qraux = np.array([math.sqrt(_dot(x[:, j], x[:, j], sequential)) for j in range(p)])
    work1 = qraux.copy()
    work2 = np.where(qraux == 0, 1.0, qraux)
    k = p + 1  # 1-based as in dqrdc2: columns from k on have been moved to the end
    for l in range(min(n, p)):
        while l + 1 < k and qraux[l] < work2[l] * tol:
            order = np.r_[np.arange(l), np.arange(l + 1, p), l]
            x, pivot = x[:, order], pivot[order]
            qraux, work1, work2 = qraux[order], work1[order], work2[order]
            k -= 1
        if l == n - 1:
            break
        nrmxl = math.sqrt(_dot(x[l:, l], x[l:, l], sequential))
        if nrmxl == 0.0:
            continue
        if x[l, l] != 0.0:
            nrmxl = math.copysign(nrmxl, x[l, l])
        x[l:, l] *= 1.0 / nrmxl
        x[l, l] += 1.0
        for j in range(l + 1, p):
            t = -_dot(x[l:, l], x[l:, j], sequential) / x[l, l]
            x[l:, j] += t * x[l:, l]
            if qraux[j] == 0.0:
                continue
            tt = max(1.0 - (abs(x[l, j]) / qraux[j]) ** 2, 0.0)
            if abs(tt) < 1e-6:
                qraux[j] = math.sqrt(_dot(x[l + 1 :, j], x[l + 1 :, j], sequential))
                work1[j] = qraux[j]
            else:
                qraux[j] *= math.sqrt(tt)
        qraux[l] = x[l, l]
        x[l, l] = -nrmxl
    return x, qraux, min(k - 1, n), pivot


def qr_qy(
    qr: np.ndarray, qraux: np.ndarray, rank: int, y: np.ndarray, sequential: bool = False
) -> np.ndarray:
    """R's `qr.qy(QR, y)` (LINPACK dqrsl): Q y, applying the Householder reflections last to first."""
    n = qr.shape[0]
    out = np.array(y, dtype=float, copy=True)
    for j in reversed(range(min(rank, n - 1))):
        if qraux[j] == 0.0:
            continue
        v = qr[j:, j].copy()
        v[0] = qraux[j]
        for c in range(out.shape[1]):
            t = -_dot(v, out[j:, c], sequential) / v[0]
            out[j:, c] += t * v
    return out


def qr_qty(qr: np.ndarray, qraux: np.ndarray, rank: int, y: np.ndarray) -> np.ndarray:
    """R's `qr.qty(QR, y)` (LINPACK dqrsl): Q' y, applying the Householder reflections first to last."""
    n = qr.shape[0]
    out = np.array(y, dtype=float, copy=True)
    for j in range(min(rank, n - 1)):
        if qraux[j] == 0.0:
            continue
        v = qr[j:, j].copy()
        v[0] = qraux[j]
        t = -(v @ out[j:, :]) / v[0]
        out[j:, :] += v[:, None] * t[None, :]
    return out
