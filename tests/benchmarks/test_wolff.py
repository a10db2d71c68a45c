"""The Wolff cluster baseline of the benchmarks against exact enumeration (fixed seeds)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.ising import get_case, initial_state
from benchmarks.metrics import ess_and_rhat
from benchmarks.wolff import bond_probability, cluster_update, run_wolff
from flowmc_like.exact import enumerate_lattice


def _z_scores(case_name, seed, n_chains=64, n_burn_in=200, n_updates=2000):
    case = get_case(case_name)
    target = case.target()
    exact = enumerate_lattice(case.L, case.n_categories, case.beta)
    x0 = initial_state(case, seed, n_chains)
    out = run_wolff(target, x0, seed, n_burn_in, n_updates)
    n = case.n_sites
    e = out["energy"] / n
    abs_m = np.abs(out["magnetization"])
    sq_dev = (out["energy"] - exact.e * n) ** 2
    ess = ess_and_rhat(np.stack([e, abs_m, sq_dev], axis=-1))["ess_bulk"]
    z_e = (e.mean() - exact.e) / (exact.sd[0] / math.sqrt(ess[0]))
    z_abs_m = (abs_m.mean() - exact.mean[2]) / (exact.sd[2] / math.sqrt(ess[1]))
    z_var = (sq_dev.mean() - exact.mean[1]) / (exact.sd[1] / math.sqrt(ess[2]))
    return {"e": z_e, "abs_m": z_abs_m, "var_e": z_var}, out


@pytest.mark.statistical
def test_wolff_matches_enumeration_on_ising_l4():
    z, out = _z_scores("ising_L4", seed=0)
    assert all(abs(v) < 4 for v in z.values()), z
    # Critical 4x4: the cluster is a sizeable fraction of the lattice, never empty.
    assert out["cluster_size"].min() >= 1
    assert 0.3 < out["cluster_size"].mean() / 16 < 1.0


@pytest.mark.statistical
@pytest.mark.slow
def test_wolff_matches_enumeration_on_potts3_l4():
    z, _ = _z_scores("potts3_L4", seed=1, n_updates=1500)
    assert all(abs(v) < 4 for v in z.values()), z


def test_bond_probability():
    assert bond_probability(0.5, 2) == pytest.approx(1 - math.exp(-1.0))
    assert bond_probability(0.5, 3) == pytest.approx(1 - math.exp(-0.5))


def test_cluster_update_flips_one_connected_cluster_of_equal_spins():
    L = 4
    s = jnp.zeros(L * L, jnp.int32)  # all equal: p_add = 1 opens every bond
    new, size = cluster_update(jax.random.key(0), s, L, 2, 1.0)
    assert int(size) == L * L
    assert np.all(np.asarray(new) == 1)
    # p_add = 0: the cluster is the seed alone.
    new, size = cluster_update(jax.random.key(1), s, L, 2, 0.0)
    assert int(size) == 1
    assert int(np.sum(np.asarray(new))) == 1
    # Potts: the cluster gets one new value, different from the old one.
    new, size = cluster_update(jax.random.key(2), s, L, 3, 1.0)
    assert len(set(np.asarray(new).tolist())) == 1 and int(new[0]) in (1, 2)
