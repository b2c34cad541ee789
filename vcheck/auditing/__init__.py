"""The audit layer: cases (built-in, drawn, large), the comparison of two fit records, and the audit runs
that put an implementation beside lme4.  Depends on `vcheck.core` and `vcheck.reference`, never on the
report, the adapters or the CLI."""
