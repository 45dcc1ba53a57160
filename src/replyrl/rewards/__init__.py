"""Rewards: heuristic, learned (regression and Bradley-Terry), composite, diversity credit."""
