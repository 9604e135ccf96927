"""Benchmarks of iredapi-ldap against the raw directory work (python -m bench; see README.md)."""
