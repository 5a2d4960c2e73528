"""Alerting helpers: readers of the project's rule files and of the commands its runbooks name."""
