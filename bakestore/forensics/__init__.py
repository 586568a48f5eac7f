"""Forensics: explain a data loss from the SQLite file itself, and recover what was deleted.

Works on any SQLite file (bakestore's or an upstream BakeTracker DB): the evidence is copied as raw
bytes, hashed, and parsed by our own reader; SQLite only ever opens a second copy. See
docs/forensics.md for the method and the report.json / case.db formats.

Public API::

    report = analyze(path, case_dir)        # -> Report (report.md, report.json, case.db written)
    report.to_dict()                        # the report.json document
    render_text(report)                     # the readable report
    compare(a, b)                           # rows added / removed / changed per table
"""

from __future__ import annotations

from .analysis import ParsedDatabase, analyze, analyze_isolated, load, parse_database
from .carve import SOURCES, Recovered
from .compare import compare, render_compare
from .evidence import Evidence, EvidenceFile, collect, verify_originals
from .report import Report, render_text, write_outputs

__all__ = ["analyze", "analyze_isolated", "compare", "render_compare", "render_text", "write_outputs", "Report", "Recovered",
           "SOURCES", "Evidence", "EvidenceFile", "collect", "verify_originals", "load", "parse_database",
           "ParsedDatabase"]
