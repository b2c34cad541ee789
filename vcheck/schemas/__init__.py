"""JSON Schemas of the files `vcheck cases export` writes (case.schema.json) and an implementation
writes back (fit.schema.json); see `vcheck.auditing.external` and docs/auditing.md."""
