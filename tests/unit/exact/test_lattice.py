"""Exact Ising/Potts references: Kaufman vs enumeration vs transfer matrix, and the JAX targets."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flowmc_like.exact import (
    OBSERVABLES,
    REFERENCE_VALUES,
    compute_observables,
    decode_states,
    encode_states,
    enumerate_lattice,
    exact_ising_torus,
    kaufman_log_z,
)
from flowmc_like.lattice import BETA_C, ising_energy, make_ising, make_potts, potts_energy

# ------------------------------------------------------------------ Kaufman vs enumeration


@pytest.mark.parametrize("beta", [BETA_C, 0.3, 0.6])
def test_kaufman_matches_enumeration_on_4x4(beta):
    exact = enumerate_lattice(4, 2, beta)
    torus = exact_ising_torus(4, beta)
    assert exact.method == "brute_force"
    assert abs(torus.e - exact.e) < 1e-10
    assert abs(torus.c_v - exact.c_v) < 1e-10
    assert abs(torus.log_z - exact.log_z) < 1e-10
    assert kaufman_log_z(4, beta) == torus.log_z


@pytest.mark.parametrize("shape", [(4, 2), (2, 4), (3, 4), (3, 3), (5, 3), (2, 2)])
@pytest.mark.parametrize("beta", [0.2, BETA_C, 0.7])
def test_kaufman_matches_enumeration_on_rectangles(shape, beta):
    n_rows, n_cols = shape
    exact = enumerate_lattice(n_rows, 2, beta, n_cols=n_cols, method="brute_force")
    torus = exact_ising_torus(n_rows, beta, n_cols=n_cols)
    assert abs(torus.e - exact.e) < 1e-10
    assert abs(torus.c_v - exact.c_v) < 1e-10
    assert abs(torus.log_z - exact.log_z) < 1e-10


def test_kaufman_is_finite_and_smooth_for_large_lattices():
    # gamma_0 = 0 at beta_c and the products overflow float64 unless taken in logs.
    step = 1e-6
    for side in (32, 64):
        below, at, above = (
            exact_ising_torus(side, beta) for beta in (BETA_C - step, BETA_C, BETA_C + step)
        )
        assert all(math.isfinite(value) for value in at)
        # d e / d beta = -C_v / beta^2: the first and second derivatives agree across gamma_0 = 0.
        slope = (above.e - below.e) / (2 * step)
        assert slope == pytest.approx(-at.c_v / BETA_C**2, rel=1e-6)


@pytest.mark.parametrize("key", sorted(REFERENCE_VALUES))
def test_reference_table_e_and_c_v(key):
    reference = REFERENCE_VALUES[key]
    torus = exact_ising_torus(reference.L, reference.beta)
    assert abs(torus.e - reference.e) < 1e-9
    assert abs(torus.c_v - reference.c_v) < 1e-9


def test_reference_table_abs_magnetization_at_l4():
    reference = REFERENCE_VALUES[(4, BETA_C)]
    exact = enumerate_lattice(4, 2, BETA_C)
    assert abs(exact.mean_abs_magnetization - reference.abs_magnetization) < 1e-9
    assert abs(exact.e - reference.e) < 1e-9
    assert abs(exact.c_v - reference.c_v) < 1e-9


def test_reference_table_at_l8_by_transfer_matrix():
    reference = REFERENCE_VALUES[(8, 0.5)]
    exact = enumerate_lattice(8, 2, 0.5)
    assert exact.method == "transfer_matrix"
    assert abs(exact.mean_abs_magnetization - reference.abs_magnetization) < 1e-9
    assert abs(exact.e - reference.e) < 1e-9
    assert abs(exact.c_v - reference.c_v) < 1e-9


@pytest.mark.slow
def test_reference_table_at_l8_beta_c_by_transfer_matrix():
    reference = REFERENCE_VALUES[(8, BETA_C)]
    exact = enumerate_lattice(8, 2, BETA_C)
    assert abs(exact.mean_abs_magnetization - reference.abs_magnetization) < 1e-9
    assert abs(exact.c_v - reference.c_v) < 1e-9


# ------------------------------------------------------------------ transfer matrix vs brute force


@pytest.mark.parametrize(
    ("n_rows", "n_cols", "n_categories", "beta"),
    [(4, 4, 2, BETA_C), (4, 4, 2, -0.3), (3, 4, 3, 1.0), (4, 3, 3, 0.5), (3, 3, 4, 1.1)],
)
def test_transfer_matrix_matches_brute_force(n_rows, n_cols, n_categories, beta):
    brute = enumerate_lattice(n_rows, n_categories, beta, n_cols=n_cols, method="brute_force")
    transfer = enumerate_lattice(
        n_rows, n_categories, beta, n_cols=n_cols, method="transfer_matrix"
    )
    assert transfer.probabilities is None
    np.testing.assert_allclose(transfer.mean, brute.mean, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(transfer.sd, brute.sd, rtol=1e-10, atol=1e-12)
    assert transfer.log_z == pytest.approx(brute.log_z, rel=1e-13)


def test_potts_4x4_by_transfer_matrix_is_consistent_with_its_log_z():
    # 3^16 states: out of brute-force reach. e = -(1/N) d ln Z / d beta, C_v from the curvature.
    # beta = 1 is next to the infinite-lattice transition ln(1 + sqrt 3) = 1.005.
    beta, step = 1.0, 1e-3
    exact = enumerate_lattice(4, 3, beta)
    assert exact.method == "transfer_matrix"
    log_z = {j: enumerate_lattice(4, 3, beta + j * step).log_z for j in (-2, -1, 1, 2)}
    log_z[0] = exact.log_z
    # Five-point stencils, truncation O(step^4).
    first = (log_z[-2] - 8 * log_z[-1] + 8 * log_z[1] - log_z[2]) / (12 * step)
    second = (-log_z[-2] + 16 * log_z[-1] - 30 * log_z[0] + 16 * log_z[1] - log_z[2]) / (
        12 * step**2
    )
    assert -first / 16 == pytest.approx(exact.e, abs=1e-10)
    assert beta**2 * second / 16 == pytest.approx(exact.c_v, abs=1e-6)
    assert 0.0 < exact.mean_abs_magnetization < 1.0


# ------------------------------------------------------------------ enumeration vs direct sums


def test_probabilities_sum_to_one_and_match_the_jax_target():
    exact = enumerate_lattice(4, 2, BETA_C)
    assert exact.probabilities.shape == (2**16,)
    assert exact.probabilities.sum() == pytest.approx(1.0, abs=1e-12)
    target = make_ising(4, BETA_C)
    states = decode_states(np.random.default_rng(0).integers(0, 2**16, 50), 16, 2)
    with jax.enable_x64(True):
        log_p = jax.vmap(target.log_prob)(jnp.asarray(states)) - exact.log_z
    np.testing.assert_allclose(
        exact.probabilities[encode_states(states, 2)], np.exp(log_p), rtol=1e-12
    )


@pytest.mark.parametrize(("n_categories", "beta"), [(2, 0.35), (3, 0.9)])
def test_3x3_enumeration_matches_direct_sums(n_categories, beta):
    exact = enumerate_lattice(3, n_categories, beta)
    states = np.array(list(itertools.product(range(n_categories), repeat=9)), dtype=np.int32)
    target = make_potts(3, beta, n_categories) if n_categories > 2 else make_ising(3, beta)
    with jax.enable_x64(True):
        energy = np.asarray(target.energy(jnp.asarray(states)))
        m = np.asarray(target.magnetization(jnp.asarray(states)))
    weights = np.exp(-beta * energy - (-beta * energy).max())
    p = weights / weights.sum()
    mean_energy = p @ energy
    assert exact.e == pytest.approx(mean_energy / 9, abs=1e-13)
    assert exact.c_v == pytest.approx(beta**2 * (p @ (energy - mean_energy) ** 2) / 9, abs=1e-12)
    assert exact.mean_abs_magnetization == pytest.approx(p @ np.abs(m), abs=1e-13)
    assert exact.moment("magnetization")[0] == pytest.approx(p @ m, abs=1e-13)
    np.testing.assert_allclose(
        exact.probabilities[encode_states(states, n_categories)], p, rtol=1e-12
    )


@pytest.mark.parametrize(("n_categories", "beta"), [(2, BETA_C), (3, 0.8)])
def test_compute_observables_reproduces_exact_moments(n_categories, beta):
    exact = enumerate_lattice(3, n_categories, beta)
    states = decode_states(np.arange(n_categories**9), 9, n_categories)
    values = compute_observables(states, exact)
    assert values.shape == (n_categories**9, len(OBSERVABLES))
    mean = exact.probabilities @ values
    sd = np.sqrt(exact.probabilities @ (values - mean) ** 2)
    np.testing.assert_allclose(mean, exact.mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sd, exact.sd, rtol=1e-10, atol=1e-14)
    # Batched draws keep their leading axes.
    assert compute_observables(states[:12].reshape(3, 4, 9), exact).shape == (3, 4, 4)


def test_encode_decode_round_trip():
    codes = np.arange(3**6)
    states = decode_states(codes, 6, 3)
    assert states.dtype == np.int32
    np.testing.assert_array_equal(encode_states(states, 3), codes)
    np.testing.assert_array_equal(states[5], [2, 1, 0, 0, 0, 0])


# ------------------------------------------------------------------ JAX targets


@pytest.mark.parametrize(
    "target",
    [
        make_ising(4, BETA_C),
        make_ising(5, 0.7),
        make_ising(2, 0.3),
        make_potts(4, 1.1, 3),
        make_potts(3, 0.5, 4),
    ],
    ids=["ising4", "ising5", "ising2", "potts4_k3", "potts3_k4"],
)
def test_delta_log_prob_matches_log_prob_under_jit_and_vmap(target):
    n_pairs = 256
    rng = np.random.default_rng(0)  # numpy inputs: no PRNG compilation per shape
    s = jnp.asarray(rng.integers(0, target.n_categories, (n_pairs, target.n_dim)), dtype=jnp.int32)
    i = jnp.asarray(rng.integers(0, target.n_dim, n_pairs), dtype=jnp.int32)
    k = jnp.asarray(rng.integers(0, target.n_categories, n_pairs), dtype=jnp.int32)

    @jax.jit
    @jax.vmap
    def both(s, i, k):
        direct = target.log_prob(s.at[i].set(k)) - target.log_prob(s)
        return target.delta_log_prob(s, i, k), direct, target.log_prob(s)

    delta, direct, log_p = both(s, i, k)
    assert delta.dtype == jnp.float32
    np.testing.assert_allclose(delta, direct, rtol=1e-5, atol=1e-5 * float(jnp.abs(log_p).max()))


def test_delta_log_prob_in_scan_tracks_log_prob_in_float64():
    with jax.enable_x64(True):
        target = make_potts(4, 0.9, 3)
        rng = np.random.default_rng(1)
        sites = jnp.asarray(rng.integers(0, target.n_dim, 200), dtype=jnp.int32)
        values = jnp.asarray(rng.integers(0, 3, 200), dtype=jnp.int32)

        def body(carry, site_value):
            s, log_p = carry
            i, k = site_value
            return (s.at[i].set(k), log_p + target.delta_log_prob(s, i, k)), None

        s0 = jnp.zeros(target.n_dim, dtype=jnp.int32)
        (s, log_p), _ = jax.lax.scan(body, (s0, target.log_prob(s0)), (sites, values))
        assert log_p.dtype == jnp.float64
        assert float(log_p) == pytest.approx(float(target.log_prob(s)), abs=1e-12)


def test_energies_and_magnetizations_of_known_states():
    all_up = jnp.ones(16, dtype=jnp.int32)
    stripes = jnp.tile(jnp.array([0, 1], dtype=jnp.int32), 8)  # columns alternate
    ising = make_ising(4, 0.4)
    potts = make_potts(3, 1.0, 3)
    potts_k2 = make_potts(4, 0.8, 2)

    @jax.jit
    def evaluate():  # one compilation for all the checks
        batch = jnp.stack([all_up, stripes, 1 - all_up])
        return {
            "ising_energy": ising_energy(batch, 4),
            "potts_energy": potts_energy(batch, 4),
            "ising_m": ising.magnetization(batch),
            "potts_m": potts.magnetization(
                jnp.stack([jnp.full(9, 2, dtype=jnp.int32), jnp.arange(9, dtype=jnp.int32) % 3])
            ),
            # Ising(beta) is two-state Potts(2 beta) up to a constant.
            "ising_vs_potts": potts_k2.log_prob(batch[0])
            - ising.log_prob(batch[0])
            - (potts_k2.log_prob(batch[1]) - ising.log_prob(batch[1])),
        }

    values = evaluate()
    # Stripes: the 16 horizontal bonds are broken (-1 each), the 16 vertical ones satisfied.
    np.testing.assert_array_equal(values["ising_energy"], [-32.0, 0.0, -32.0])
    np.testing.assert_array_equal(values["potts_energy"], [-32.0, -16.0, -32.0])
    np.testing.assert_array_equal(values["ising_m"], [1.0, 0.0, -1.0])
    np.testing.assert_allclose(values["potts_m"], [1.0, 0.0], atol=1e-7)
    assert abs(float(values["ising_vs_potts"])) < 1e-5


# ------------------------------------------------------------------ validation


def test_invalid_inputs_raise():
    with pytest.raises(ValueError, match="L must be"):
        make_ising(1, 0.4)
    with pytest.raises(ValueError, match="n_categories"):
        make_potts(4, 0.4, 1)
    with pytest.raises(ValueError, match="beta"):
        make_ising(4, float("nan"))
    with pytest.raises(ValueError, match="expected"):
        ising_energy(jnp.zeros(15, dtype=jnp.int32), 4)
    with pytest.raises(ValueError, match="beta must be > 0"):
        exact_ising_torus(4, 0.0)
    with pytest.raises(ValueError, match="states"):
        enumerate_lattice(5, 2, 0.4, method="brute_force")
    with pytest.raises(ValueError, match="method"):
        enumerate_lattice(3, 2, 0.4, method="exact")
    with pytest.raises(ValueError, match="unknown observable"):
        enumerate_lattice(2, 2, 0.4).moment("energy")
