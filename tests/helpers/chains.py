"""Run chains of a kernel with fixed params through the library's local phase."""

from flowmc_like.conformance._chains import ChainRun, run_chains

__all__ = ["ChainRun", "run_chains"]
