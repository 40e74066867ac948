"""The security suite: one test per finding of the outside security test (issue "Safe to
deploy"), each failing on the code it was found on. Shops are made as the web tests make them
(the ``app`` and ``client`` fixtures of tests/conftest.py)."""

from support.production import builtin_providers_only  # noqa: F401 (a fixture)
