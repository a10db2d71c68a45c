"""Side-by-side benchmarks of flowmc_like against its peers (flowMC, blackjax NUTS) and, on the
Ising/Potts cases, against single-site Metropolis and the Wolff cluster algorithm.

See ``benchmarks/README.md`` for the targets, the metrics, every sampler setting and how to
run ``python -m benchmarks.run --suite quick|full``.
"""
