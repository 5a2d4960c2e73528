"""Alerting helpers: the business-hours rule generator and readers of the project's rule files."""
