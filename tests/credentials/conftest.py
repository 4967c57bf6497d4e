"""Fixtures of real credentials; see ``realcreds.py``."""

from realcreds import credential_tools, grid, kdc, kdc_service, pki  # noqa: F401
