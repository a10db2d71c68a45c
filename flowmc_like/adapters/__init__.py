"""Inbound adapters: user positions (pytrees) and PPL models (numpyro, PyMC) as flat targets."""
