"""The marketer's report: one self-contained HTML file of everything custseg knows about a store.

See :func:`~custseg.report.builder.build_report` and ``docs/report.md``.
"""

from custseg.report.builder import ReportResult, build_report, write_report

__all__ = ["ReportResult", "build_report", "write_report"]
