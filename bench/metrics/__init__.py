"""Metrics computed from predictions and features (robustness; FID and friends elsewhere)."""
