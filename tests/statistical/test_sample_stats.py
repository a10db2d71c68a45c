"""Per-draw sample statistics: acceptance_rate, step_size, diverging, energy, log_q.

The HMC energy is checked against its exact stationary law: after an HMC transition that
leaves ``p(x) N(p; 0, M)`` invariant, the kinetic energy ``energy + lp`` of the kept state
is ``chi2_d / 2`` whatever the mass matrix (mean ``d / 2``, variance ``d / 2``). A kernel
whose reported kinetic energy uses the wrong mass fails that z-test.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import flowmc_like as fm
from flowmc_like.diagnostics import diagnose
from flowmc_like.kernels.hmc import HMCParams, HMCState
from flowmc_like.phases import init_kernel_states, local_trace, run_local_phase
from flowmc_like.records import LoopOutput
from tests.conftest import TINY
from tests.helpers.mcse import mean_z_scores

pytestmark = pytest.mark.statistical

SCALES = jnp.array([0.5, 1.0, 2.0, 4.0])
N_DIM = SCALES.size


def scaled_normal(x):
    """A Gaussian with standard deviations 0.5, 1, 2, 4 (so the adapted mass is not 1)."""
    return -0.5 * jnp.sum((x / SCALES) ** 2)


@dataclasses.dataclass(frozen=True)
class HMCWithWrongKineticEnergy(fm.HMC):
    """A planted bug: the kinetic energy divides by the inverse mass instead of multiplying."""

    def kinetic_energy(self, params: HMCParams, momentum):
        return 0.5 * jnp.sum(momentum**2 / params.inverse_mass)


@pytest.fixture(scope="module")
def hmc_result():
    sampler = fm.Sampler(
        scaled_normal,
        n_dim=N_DIM,
        n_chains=16,
        local_kernel=fm.HMC(n_leapfrog=5),
        n_training_loops=5,
        n_production_loops=4,
        n_local_steps=40,
        n_global_steps=20,
        local_in_latent_space=False,  # in latent space the energy is the latent target's
        progress_bar=False,
    )
    x0 = jax.random.normal(jax.random.key(3), (16, N_DIM)) * SCALES
    return sampler.run(jax.random.key(0), x0)


def kinetic_energy_z(kinetic: np.ndarray) -> float:
    """z of the mean kinetic energy ``(n_chains, n_draws)`` against ``chi2_d / 2``."""
    return float(mean_z_scores(kinetic[..., None], [N_DIM / 2], [np.sqrt(N_DIM / 2)])[0])


def test_hmc_energy_is_the_hamiltonian_of_the_kept_state(hmc_result):
    stats = hmc_result.draw_stats
    is_local = ~hmc_result.is_global[0]
    kinetic = (stats["energy"] + hmc_result.log_prob)[:, is_local]
    assert np.all(kinetic >= -1e-3)
    assert np.all(np.isnan(stats["energy"][:, ~is_local]))
    z = kinetic_energy_z(kinetic)
    assert abs(z) < 4, z


def stationary_kinetic_energy(kernel) -> np.ndarray:
    """``energy + lp`` of 100 steps of 32 chains started from exact draws, mass = variances."""
    positions = jax.random.normal(jax.random.key(4), (32, N_DIM)) * SCALES
    states = init_kernel_states(kernel, scaled_normal, positions)
    params = HMCParams(jnp.asarray(0.4), SCALES**2)
    adaptation = kernel.adaptation()
    _, _, trace = run_local_phase(
        kernel, adaptation, scaled_normal, 100, jax.random.key(5), states,
        adaptation.init(params, positions), params, jnp.asarray(False), 1,
    )  # fmt: skip
    return np.asarray(trace.energy + trace.log_prob)


def test_the_energy_check_catches_a_kinetic_energy_with_the_wrong_mass():
    assert abs(kinetic_energy_z(stationary_kinetic_energy(fm.HMC(n_leapfrog=5)))) < 4
    wrong = stationary_kinetic_energy(HMCWithWrongKineticEnergy(n_leapfrog=5))
    assert abs(kinetic_energy_z(wrong)) > 8


def test_log_q_is_the_model_density_of_global_draws(hmc_result):
    stats = hmc_result.draw_stats
    is_global = hmc_result.is_global[0]
    assert is_global.any() and np.all(np.isnan(stats["log_q"][:, ~is_global]))
    approximation = hmc_result.approximation()
    draws = hmc_result.flat_samples[:, is_global]
    expected = np.asarray(approximation.log_prob_unconstrained(jnp.asarray(draws)))
    np.testing.assert_allclose(stats["log_q"][:, is_global], expected, rtol=1e-4, atol=1e-3)


def test_step_size_and_acceptance_rate_of_local_draws(hmc_result):
    stats = hmc_result.draw_stats
    is_local = ~hmc_result.is_global[0]
    np.testing.assert_allclose(
        stats["step_size"][:, is_local], float(hmc_result.kernel_params.step_size), rtol=1e-6
    )
    assert np.all(np.isnan(stats["step_size"][:, ~is_local]))
    np.testing.assert_allclose(
        stats["acceptance_rate"][:, is_local].mean(axis=1),
        hmc_result.local_acceptance,
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        stats["acceptance_rate"][:, ~is_local].mean(axis=1),
        hmc_result.global_acceptance,
        rtol=1e-5,
    )
    assert stats["diverging"].dtype == bool and not stats["diverging"].any()
    assert hmc_result.diagnostics.n_divergent == 0


def test_arviz_sample_stats_and_saved_result(hmc_result, tmp_path):
    idata = hmc_result.to_arviz()
    assert {"acceptance_rate", "step_size", "diverging", "energy", "log_q"} <= set(
        idata.sample_stats.data_vars
    )
    assert {"energy", "step_size"} <= set(idata.warmup_sample_stats.data_vars)
    loaded = fm.load_result(hmc_result.save(tmp_path / "saved"))
    for name, values in hmc_result.draw_stats.items():
        np.testing.assert_array_equal(loaded.draw_stats[name], values)
        np.testing.assert_array_equal(
            loaded.warmup_draw_stats[name], hmc_result.warmup_draw_stats[name]
        )


@pytest.mark.parametrize("kernel", [fm.HMC(step_size=1.0, n_leapfrog=3), fm.MALA(step_size=1.0)])
def test_a_step_far_too_large_for_the_curvature_diverges(kernel):
    """A target of scale 1e-3 with step size 1: the energy error is about 1e5 or more."""

    def narrow(x):
        return -0.5 * jnp.sum((x / 1e-3) ** 2)

    def run(step_size):
        positions = jax.random.normal(jax.random.key(1), (8, 2)) * 1e-3
        states = init_kernel_states(kernel, narrow, positions)
        params = kernel.init_params(2)._replace(step_size=jnp.asarray(step_size))
        adaptation = kernel.adaptation()
        _, _, trace = run_local_phase(
            kernel, adaptation, narrow, 10, jax.random.key(2), states,
            adaptation.init(params, positions), params, jnp.asarray(False), 1,
        )  # fmt: skip
        return trace

    diverging = run(1.0)
    assert diverging.diverging.mean() > 0.9 and not diverging.is_accepted.any()
    calm = run(1e-4)
    assert not calm.diverging.any() and calm.is_accepted.mean() > 0.5


def test_energy_error_is_minus_the_log_ratio_and_flags_nonfinite():
    kernel = fm.HMC(step_size=0.1, n_leapfrog=2, step_size_jitter=0.0)
    state = kernel.init(jnp.ones(N_DIM), scaled_normal)
    params = kernel.init_params(N_DIM)
    _, info = kernel.step(jax.random.key(0), state, scaled_normal, params)
    assert np.isclose(np.exp(min(0.0, -float(info.energy_error))), float(info.acceptance_prob))

    def nan_beyond(x):
        return jnp.where(x[0] > 1.0, jnp.nan, scaled_normal(x))

    start = jnp.full(N_DIM, 0.999)
    nan_state = HMCState(start, nan_beyond(start), jax.grad(scaled_normal)(start))
    positions = jnp.stack([start] * 8)
    states = jax.vmap(lambda x: nan_state._replace(position=x))(positions)
    infos = jax.vmap(kernel.step, in_axes=(0, 0, None, None))(
        jax.random.split(jax.random.key(0), 8), states, nan_beyond, params
    )[1]
    trace = local_trace(positions, states.log_prob, infos, params.step_size)
    is_nonfinite = ~np.isfinite(np.asarray(infos.energy_error))
    assert is_nonfinite.any()  # some trajectories leave the finite region
    np.testing.assert_array_equal(np.asarray(trace.diverging), is_nonfinite)


def test_local_only_runs_warn_about_divergences():
    config = fm.Sampler(scaled_normal, n_dim=N_DIM, global_model=None, **TINY).config
    draws = np.random.default_rng(0).normal(size=(4, 200, N_DIM))
    diverging = np.zeros((4, 200), bool)
    diverging[:, :10] = True  # 5 % of the local draws
    verdict = diagnose(config, [], draws, False, diverging, np.ones(200, bool))
    assert verdict.n_divergent == 40
    assert any("diverged" in message for message in verdict.warnings)
    with_flow = diagnose(config, [], draws, True, diverging, np.ones(200, bool))
    assert with_flow.n_divergent == 40
    assert not any("diverged" in message for message in with_flow.warnings)


def test_loop_files_written_before_the_stats_existed_still_load():
    arrays = {
        "trace_position": np.zeros((2, 3, 1)),
        "trace_log_prob": np.zeros((2, 3)),
        "trace_is_accepted": np.zeros((2, 3), bool),
        "trace_acceptance_prob": np.zeros((2, 3)),
        "trace_is_nonfinite": np.zeros((2, 3), bool),
    }
    output = stored_loop_output()
    stored = {k: v for k, v in output.to_arrays().items() if not k.startswith("trace_")}
    loaded = LoopOutput.from_arrays({**stored, **arrays})
    assert np.all(np.isnan(loaded.trace.log_q)) and not loaded.trace.diverging.any()


def stored_loop_output() -> LoopOutput:
    """A loop's output with zero draws (for the fields a loop file stores besides the trace)."""
    from flowmc_like.phases import PhaseSummary, Trace
    from flowmc_like.records import loop_output

    shape = (2, 3)
    trace = Trace(
        np.zeros((*shape, 1)), np.zeros(shape), np.zeros(shape, bool), np.zeros(shape),
        np.zeros(shape, bool), np.zeros(shape), np.zeros(shape), np.zeros(shape, bool),
        np.zeros(shape),
    )  # fmt: skip
    summary = PhaseSummary(np.zeros(2), np.zeros(2, np.int32))
    return loop_output(
        [trace], summary, None, None, 0.1, is_training=False, discarded=False, n_epochs=1,
        n_kept_local=3, has_local_steps=True,
    )  # fmt: skip
