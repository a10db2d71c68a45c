"""Pairwise targets against exact enumeration: the enumeration itself, then a spin glass run.

`flowmc_like.testing.exact_pairwise` is checked against a brute-force sum over all states
(and pairs of states, for the overlap) on six sites. Then single-site sweeps of the `Sampler`
on an SK instance (N = 12, beta = 1) must give the exact mean energy within 4 Monte Carlo
standard errors (exact sd over the square root of ArviZ's bulk ESS), and the same sweeps at a
temperature 20 % off must not.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.testing import exact_pairwise, overlap, sherrington_kirkpatrick
from tests.helpers.mcse import mean_z_scores

pytestmark = [
    pytest.mark.statistical,
    # 400 sweeps are plenty for these z-tests, though not for the run's own R-hat target
    pytest.mark.filterwarnings("ignore:max R-hat:RuntimeWarning"),
]

Z_BOUND = 4.0
N_CHAINS = 64
BETA = 1.0
TARGET = sherrington_kirkpatrick(12, beta=BETA, seed=1)


def _brute_force(target):
    """log Z, <E>, sd E and, for binary targets, the spin and overlap moments, by direct sums."""
    n, k = target.n_dim, target.n_categories
    states = np.array(list(itertools.product(range(k), repeat=n)))
    w, h = target.dense_couplings(), target.fields
    pair = sum(w[i, j, states[:, i], states[:, j]] for i in range(n) for j in range(n) if i != j)
    energy = -0.5 * pair - sum(h[i, states[:, i]] for i in range(n))
    log_weight = -target.beta * energy
    log_z = np.log(np.sum(np.exp(log_weight)))
    p = np.exp(log_weight - log_z)
    mean = p @ energy
    out = {"log_z": log_z, "mean_energy": mean, "energy_sd": np.sqrt(p @ (energy - mean) ** 2)}
    if k == 2:
        sigma = 2.0 * states - 1.0
        out["magnetization_mean"] = p @ sigma
        out["correlations"] = np.einsum("s,si,sj->ij", p, sigma, sigma)
        q = sigma @ sigma.T / n  # (state a, state b)
        joint = np.outer(p, p)
        out["q2"] = np.sum(joint * q**2)
        out["q2_sd"] = np.sqrt(np.sum(joint * q**4) - out["q2"] ** 2)
        out["abs_q"] = np.sum(joint * np.abs(q))
    return out


def _six_site_targets():
    rng = np.random.default_rng(7)
    j = rng.normal(size=(6, 6))
    j = np.triu(j, 1) + np.triu(j, 1).T
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 0], [0, 3]])
    return {
        "sk_with_fields": sherrington_kirkpatrick(6, 1.5, seed=2, fields=rng.normal(size=6)),
        "units": fm.make_pairwise(j, rng.normal(size=6), beta=0.8, spins=False),
        "sparse_categorical": fm.make_pairwise(
            (edges, rng.normal(size=(len(edges), 3, 3))),
            rng.normal(size=(6, 3)),
            n_categories=3,
            beta=1.2,
        ),
    }


@pytest.mark.parametrize("name", ["sk_with_fields", "units", "sparse_categorical"])
def test_enumeration_matches_brute_force_on_six_sites(name):
    target = _six_site_targets()[name]
    exact = exact_pairwise(target, chunk=7)  # chunks that do not divide K^N
    reference = _brute_force(target)
    for field, value in reference.items():
        np.testing.assert_allclose(getattr(exact, field), value, rtol=1e-10, atol=1e-12)
    if target.n_categories != 2:
        assert exact.correlations is None and exact.q2 is None


def test_enumeration_identities_and_limits():
    exact = _exact()
    n = TARGET.n_dim
    assert exact.q2 == pytest.approx(np.sum(exact.correlations**2) / n**2, rel=1e-10)
    np.testing.assert_allclose(np.diag(exact.correlations), 1.0)
    np.testing.assert_allclose(exact.magnetization_mean, 0.0, atol=1e-12)  # flip-invariant
    with pytest.raises(ValueError, match="too many to enumerate"):
        exact_pairwise(sherrington_kirkpatrick(21, 1.0))
    with pytest.raises(ValueError, match="too many to enumerate"):
        exact_pairwise(fm.make_pairwise(np.zeros((13, 13, 3, 3)), n_categories=3))


@functools.cache
def _exact():
    return exact_pairwise(TARGET)


def _starts():
    values = np.random.default_rng(0).integers(0, 2, (N_CHAINS, TARGET.n_dim))
    return jnp.asarray(values, jnp.int32)


def _sweeps(target, delta_log_prob=None):
    """Single-site Metropolis sweeps of ``target`` by the `Sampler`, no global model."""
    sampler = fm.Sampler(
        target.log_prob,
        n_chains=N_CHAINS,
        local_kernel=fm.SiteFlip(2, delta_log_prob=delta_log_prob or target.delta_log_prob),
        global_model=None,
        n_training_loops=1,
        n_production_loops=4,
        n_local_steps=100,
        progress_bar=False,
    )
    return sampler.run(jax.random.key(1), _starts())


def _z_scores(result):
    """z of the energy (all chains) and of ``q^2`` (chains paired (0, 1), (2, 3), ...)."""
    exact = _exact()
    samples = np.asarray(result.samples)  # (n_chains, n_draws, N)
    energy = np.asarray(TARGET.energy(samples), np.float64)[..., None]
    q2 = overlap(samples[0::2], samples[1::2])[..., None] ** 2
    z_energy = mean_z_scores(energy, np.array([exact.mean_energy]), np.array([exact.energy_sd]))
    z_q2 = mean_z_scores(q2, np.array([exact.q2]), np.array([exact.q2_sd]))
    return float(z_energy[0]), float(z_q2[0])


def test_site_flip_sweeps_match_the_exact_spin_glass():
    result = _sweeps(TARGET)
    assert np.asarray(result.samples).shape[:2] == (N_CHAINS, 400)
    z_energy, z_q2 = _z_scores(result)
    assert abs(z_energy) < Z_BOUND, z_energy
    assert abs(z_q2) < Z_BOUND, z_q2


def test_the_z_test_catches_sweeps_at_the_wrong_temperature():
    """A local move 20 % too strong samples ``beta = 1.2``; the energy's z-test must fail.

    The `Sampler` refuses a ``delta_log_prob`` that disagrees with ``log_prob`` (it checks a
    few random sites before compiling), so the planted bug is a whole target at the wrong
    temperature, consistent in itself: the same stationary law as that wrong move.
    """

    def too_strong(s, i, k):
        return 1.2 * TARGET.delta_log_prob(s, i, k)

    with pytest.raises(ValueError, match="delta_log_prob disagrees with log_prob"):
        _sweeps(TARGET, delta_log_prob=too_strong)
    wrong = fm.make_pairwise(TARGET.couplings, TARGET.fields, beta=1.2 * BETA)
    z_energy, _ = _z_scores(_sweeps(wrong))
    assert abs(z_energy) > Z_BOUND, z_energy
