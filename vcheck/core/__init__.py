"""The core: lme4's `lmer` without R.

formula text + DataFrame -> `parse` -> `design` (X, y, Zt, Lambdat, Lind, theta0) -> `deviance` (profiled
REML/ML criterion of theta) -> `optimize` (lme4's BOBYQA path) -> `fit` (the `LmerFit` record) ->
`covariance` (G, V, GLS beta).  No module here imports anything outside `vcheck.core`.
"""
