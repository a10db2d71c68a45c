"""Analytic targets, Monte Carlo z-scores and conformance checks for tests."""
