"""Evaluation: generation cache, metrics, alarms, judge, statistics, report."""
