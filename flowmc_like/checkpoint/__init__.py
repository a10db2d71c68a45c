"""Checkpoints: a run's full state after every loop, written atomically, and read back.

`files` reads and writes the files below; `run` is the run's side (what a run stores when
it starts and after each loop, and how `Sampler.resume` reads it back).

A checkpoint is a directory:

- ``run.json``: format version, the run's sizes, the sampler's settings (to check a resume
  against), written once when the run starts.
- ``sampler.pkl``: the Sampler's constructor arguments (kernel, model, settings, ``data``), the
  initial position and the key, pickled; written once.
- ``log_prob.pkl``: the log density pickled by reference (module and name), when pickle can
  store it; a lambda or a function defined inside another one cannot be, and
  ``Sampler.resume`` then needs ``log_prob=``.
- ``loop_00000.npz``, ...: each finished loop's draws (positions, log densities, acceptance
  flags) and its history record; written once, when the loop ends.
- ``state.npz``: everything the next loop starts from (chain and kernel states, adaptation
  state, model parameters and optimiser state, training window, loop index) and the timings
  so far; replaced after every loop.

Every file is written to ``<name>.tmp`` and renamed over its final name, so a run killed at
any moment leaves the previous complete checkpoint; ``state.npz`` is replaced last, and a
loop file past the loop count it records is ignored (the resumed run writes it again).
"""
