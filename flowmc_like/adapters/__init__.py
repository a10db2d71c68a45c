"""Adapters between user inputs (pytrees, log densities) and ArviZ."""
