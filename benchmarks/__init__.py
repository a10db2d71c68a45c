"""Side-by-side benchmarks of flowmc_like against its peers (flowMC, blackjax NUTS).

See ``benchmarks/README.md`` for the targets, the metrics, every sampler setting and how
to run ``python -m benchmarks.run``.
"""
