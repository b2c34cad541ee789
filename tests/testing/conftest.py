"""tests/testing: the user's project is run by test_user_project.py in a subprocess, never collected here
(its faulty implementation is meant to fail); no_rpy2/ is a sitecustomize for child processes."""

collect_ignore = ["user_project", "no_rpy2"]
