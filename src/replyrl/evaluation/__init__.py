"""Evaluation (DESIGN §5): generation cache, metrics, alarms, judge, statistics, report.

Pipeline: `generate_cache` (n replies per test tweet, cached JSONL) -> `scoring` (reward scores
and per-tweet `metrics`) -> `judge` (pairwise LLM judge) -> `summary` (`stats`, `alarms`,
training `logs`) -> `report` (`plots`); `evaluate` orchestrates and backs `replyrl evaluate` /
`replyrl report`. See docs/evaluation.md.
"""
