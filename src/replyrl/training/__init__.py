"""Training: one objective (SFT + policy gradient + diversity credit + KL) on TRL."""
