"""The same key gives the same draws as the pinned reference (see reference_runs.py)."""

import numpy as np
import pytest

from tests.regression.reference_runs import CASES, REFERENCE_FILE, pinned_arrays

# Accept/reject decisions and discrete draws must match exactly. Float arrays may differ by
# XLA rounding: its CPU code generation depends on the processor (vector width, fused
# multiply-add), and the same run on two x86-64 machines differs by up to about 5e-6 relative;
# a refactor that fuses operations differently does the same. Such rounding cannot flip an
# accept/reject decision in these short runs without showing up as a far larger difference.
RELATIVE_TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def reference():
    with np.load(REFERENCE_FILE) as stored:
        return {name: stored[name] for name in stored.files}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_key_same_draws(case, reference):
    arrays = pinned_arrays(CASES[case]())
    expected_names = {name.split("/", 1)[1] for name in reference if name.startswith(case + "/")}
    assert set(arrays) == expected_names
    for field, value in arrays.items():
        expected = reference[f"{case}/{field}"]
        assert value.shape == expected.shape, field
        assert value.dtype == expected.dtype, field
        if np.issubdtype(value.dtype, np.floating):
            np.testing.assert_allclose(
                value, expected, rtol=RELATIVE_TOLERANCE, atol=1e-7, err_msg=f"{case}: {field}"
            )
        else:
            np.testing.assert_array_equal(value, expected, err_msg=f"{case}: {field}")
