"""The version of bakestore, in one place (exports and the audit log record it)."""

__version__ = "0.1.0"
