"""The dense PLS evaluation in one compiled call: Lambda' Z'Z Lambda + I, its LAPACK Cholesky and
L^-1 Lambda' Z'[X r], with LAPACK called from numba.

For theta, with Lambda's nonzeros by column (`vcheck.core.dense_pls.DensePLS`: column j has vals[s, j]
at row rows[s, j], s ascending by row, 0 at row 0 where the column has fewer):

    B = Lambda' Z'Z,   A = B Lambda + I = L L'  (dpotrf, lower),   H = Lambda' Z'[X r],   c = L^-1 H  (dtrtrs)

B and A are `vcheck.core.compiled.lt_zz_l`'s chains (fused multiply-adds from 0.0, s ascending), taken
only where the Cholesky reads them: A's lower triangle, and of row i of B the columns below
rmax[i] = 1 + max { rows[s, j] : j <= i } (every row A[i, :i+1] reads).  dpotrf and dtrtrs are
scipy's own LAPACK (`scipy.linalg.cython_lapack`, the library behind `scipy.linalg.lapack`), called
with the arguments `DenseSchur` passes through the f2py wrappers, so L and c are theirs bit for bit
(tests/core/test_compiled.py, tests/reference/test_compiled_corpus.py).  What was about 25 us of numpy
and wrapper calls per evaluation at q = 80 is one call.

LAPACK is reached through its function address, an argument of the kernel (so numba can cache the
compiled code on disk): `_call_lapack` emits a call through that pointer with every argument a pointer,
the Fortran convention.  Importing this module imports numba (`vcheck.core.compiled.dense_factor_kernel`
imports it on first use).
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import get_cython_function_address, intrinsic

#: scipy's LAPACK (cython_lapack's function pointers): the routines DenseSchur calls through f2py
DPOTRF = get_cython_function_address("scipy.linalg.cython_lapack", "dpotrf")
DTRTRS = get_cython_function_address("scipy.linalg.cython_lapack", "dtrtrs")
_L, _N = ord("L"), ord("N")


@intrinsic
def _call_lapack(typingctx: Any, address: Any, pointers: Any) -> Any:
    """Call the void function at `address` with the pointers (a tuple of integer addresses)."""
    if not isinstance(address, types.Integer) or not isinstance(pointers, types.BaseTuple):
        return None
    kinds: tuple[Any, ...] = tuple(getattr(pointers, "types", ()))
    if not all(isinstance(t, types.Integer) for t in kinds):
        return None
    count = len(kinds)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        address_v, pointers_v = args
        char_p = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.VoidType(), [char_p] * count)
        fn = builder.inttoptr(address_v, fnty.as_pointer())
        ptrs = [
            builder.inttoptr(
                context.cast(builder, builder.extract_value(pointers_v, i), kinds[i], types.uintp),
                char_p,
            )
            for i in range(count)
        ]
        builder.call(fn, ptrs)
        return context.get_dummy_value()

    return types.void(address, pointers), codegen


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def dense_factor(
    potrf: int,
    trtrs: int,
    theta: np.ndarray,
    lam_theta: np.ndarray,
    entry: np.ndarray,
    rows: np.ndarray,
    rmax: np.ndarray,
    ZtZ: np.ndarray,
    ZtXr: np.ndarray,
    L: np.ndarray,
    H: np.ndarray,
    c: np.ndarray,
) -> int:
    """With potrf and trtrs the addresses of LAPACK's dpotrf and dtrtrs: fill L (q, q, Fortran order:
    the lower Cholesky factor of A, upper triangle 0), H (q, p+1) and c = L^-1 H (q, p+1, Fortran
    order) at theta (module docstring).  Returns 0, or dpotrf's info > 0 (A is not positive definite:
    L and c are then not set), or -(dtrtrs's info)."""
    ns, q = entry.shape
    p1 = ZtXr.shape[1]
    vals = np.empty((ns, q))
    for s in range(ns):
        for j in range(q):
            e = entry[s, j]
            vals[s, j] = theta[lam_theta[e]] if e >= 0 else 0.0
    Bi = np.empty(q)
    Ai = np.empty(q)
    for i in range(q):
        m = rmax[i]
        for j in range(m):
            Bi[j] = 0.0
        for j in range(p1):
            H[i, j] = 0.0
        for s in range(ns):
            v = vals[s, i]
            r = rows[s, i]
            for j in range(m):
                Bi[j] = Bi[j] + v * ZtZ[r, j]
            for j in range(p1):
                H[i, j] = H[i, j] + v * ZtXr[r, j]
        for j in range(i + 1):
            Ai[j] = 0.0
        for s in range(ns):
            for j in range(i + 1):
                Ai[j] = Ai[j] + Bi[rows[s, j]] * vals[s, j]
        for j in range(i):
            L[i, j] = Ai[j]
        L[i, i] = Ai[i] + 1.0
    # LAPACK's scalar arguments, by pointer, in one buffer that is read after the last call (so that it
    # lives through both): uplo, trans as bytes, then n, nrhs, info as int32
    w = np.zeros(16, dtype=np.uint8)
    w[0], w[1] = _L, _N
    iw = w[4:].view(np.int32)
    iw[0], iw[1] = q, p1
    uplo, notrans = w.ctypes.data, w.ctypes.data + 1
    n, nrhs, info = iw.ctypes.data, iw.ctypes.data + 4, iw.ctypes.data + 8
    # dpotrf(uplo, n, a, lda, info)
    _call_lapack(potrf, (uplo, n, L.ctypes.data, n, info))  # type: ignore[call-arg]
    if iw[2] != 0:
        return int(iw[2])
    for j in range(1, q):
        for i in range(j):
            L[i, j] = 0.0
    for j in range(p1):
        for i in range(q):
            c[i, j] = H[i, j]
    # dtrtrs(uplo, trans, diag, n, nrhs, a, lda, b, ldb, info)
    _call_lapack(trtrs, (uplo, notrans, notrans, n, nrhs, L.ctypes.data, n, c.ctypes.data, n, info))  # type: ignore[call-arg]
    return -int(iw[2])
