"""The audit layer: cases (built-in, drawn, large), the comparison of two fit records, and the audit runs
that put an implementation beside lme4 (one case, a whole audit, sweeps in processes or on Dask).

Depends on `vcheck.core` and `vcheck.reference`.  Outward only where `tests/test_architecture.py` lists
it: the result types' `summary()` renders with `vcheck.report.text`, and a sweep's worker loads its
target by name through `vcheck.adapters`.
"""
