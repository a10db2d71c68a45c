"""Test-only helpers: analytic targets and Monte Carlo z-scores."""
