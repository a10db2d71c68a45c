"""benchmarks/devices.py: the table and its place in the report (no runs, no timing)."""

from benchmarks import devices


def _run(n_devices, wall, draws_per_s, ess_per_s, seed=0):
    return {
        "target": "gmm2_10d",
        "n_devices": n_devices,
        "n_chains": 128,
        "seed": seed,
        "wall_s": wall,
        "compile_s": 5.0,
        "production_s": 10.0,
        "draws_per_s": draws_per_s,
        "ess_bulk_min": 1000.0,
        "ess_per_s": ess_per_s,
        "global_acceptance": 0.5,
        "mode_weight_err": 0.01,
    }


def test_table_reports_medians_and_ratios_to_one_device():
    runs = [
        _run(1, 20.0, 1000.0, 50.0),
        _run(1, 22.0, 1200.0, 54.0, seed=1),
        _run(4, 30.0, 500.0, 25.0),
        _run(4, 32.0, 700.0, 27.0, seed=1),
    ]
    section = devices.table(runs, "python -m benchmarks.devices")
    assert section.startswith(devices.SECTION)
    assert "forced CPU devices share" in section
    rows = [line for line in section.splitlines() if line.startswith("| gmm2_10d")]
    assert rows[0].split("|")[2:8] == [" 1 ", " 21.0 ", " 5.0 ", " 1100 ", " 52.0 ", " 1.00 "]
    assert rows[1].split("|")[2:9] == [
        " 4 ",
        " 31.0 ",
        " 5.0 ",
        " 600 ",
        " 26.0 ",
        " 0.55 ",
        " 0.50 ",
    ]


def test_section_replaces_its_previous_version(tmp_path):
    report = tmp_path / "benchmarks.md"
    report.write_text("# Report\n\n## Figures\n\nfig\n")
    devices.replace_docs_section(devices.SECTION + "\n\nfirst\n", report)
    assert report.read_text().endswith(devices.SECTION + "\n\nfirst\n")
    report.write_text(report.read_text() + "\n## After\n\nkept\n")
    devices.replace_docs_section(devices.SECTION + "\n\nsecond\n", report)
    text = report.read_text()
    assert "first" not in text and "second" in text
    assert text.index("## Figures") < text.index(devices.SECTION) < text.index("## After")
    assert text.endswith("## After\n\nkept\n")
