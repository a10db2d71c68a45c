"""Outbound conversions of a finished run: ArviZ data and the diagnostics figure.

The only modules that import arviz and matplotlib (lazily, when a user asks for them). They
take plain arrays and `History`, never a `SamplerResult`, so nothing here imports the result.
"""
