"""result.plot_diagnostics renders a valid PNG, with and without a global model."""

import struct

import jax
import numpy as np
import pytest

import flowmc_like as fm
from tests.conftest import TINY, standard_normal

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("global_model", ["default", None], ids=["flow", "local_only"])
def test_plot_diagnostics_writes_a_png(tmp_path, global_model):
    kwargs = {} if global_model == "default" else {"global_model": None}
    sampler = fm.Sampler(standard_normal, n_dim=2, n_chains=4, **TINY, **kwargs)
    result = sampler.run(jax.random.key(0), jax.random.normal(jax.random.key(1), (4, 2)))
    path = tmp_path / "diagnostics.png"
    figure = result.plot_diagnostics(path)
    data = path.read_bytes()
    width, height = _png_size(data)
    assert width >= 500 and height >= 300 and len(data) > 10_000
    assert len(figure.axes) == 4
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == [
        "training loss (NLL per example)",
        "local acceptance",
        "global acceptance",
        "step size",
    ]
    # the plotted points are the history's values
    local_line = figure.axes[1].get_lines()[0]
    assert list(local_line.get_ydata()) == pytest.approx(list(result.history.local_acceptance))
    assert (figure.axes[0].get_lines() != []) == (global_model == "default")


def test_plot_diagnostics_returns_a_figure_without_a_path():
    sampler = fm.Sampler(standard_normal, n_dim=2, n_chains=4, **TINY, global_model=None)
    result = sampler.run(jax.random.key(0), jax.random.normal(jax.random.key(1), (4, 2)))
    figure = result.plot_diagnostics()
    assert len(figure.axes) == 4


def test_plot_diagnostics_shows_the_exchanges_of_a_tempered_run(tmp_path):
    sampler = fm.Sampler(
        standard_normal, n_dim=2, n_chains=4, **TINY, global_model=None, n_temperatures=3
    )
    result = sampler.run(jax.random.key(0), jax.random.normal(jax.random.key(1), (4, 2)))
    figure = result.plot_diagnostics(tmp_path / "tempered.png")
    assert len(figure.axes) == 6
    assert figure.axes[4].get_title().startswith("exchange acceptance, 2 pairs")
    lines = figure.axes[4].get_lines()
    assert len(lines) == 2
    np.testing.assert_allclose(lines[0].get_ydata(), result.history.exchange_rate[:, 0])
    assert "round trips" in figure.axes[5].get_title()
