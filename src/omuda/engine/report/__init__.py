"""`omuda report`: a run report with the paper's figures (see docs/REPORT.md)."""

from omuda.engine.report.build import ReportOptions, build_report

__all__ = ["ReportOptions", "build_report"]
