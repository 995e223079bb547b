"""What a run reports of the searches' fronts: summary.md's hypervolume against exact's, and convergence.png."""
from __future__ import annotations

import re

import pandas as pd
import pytest
import yaml
from support import an_experiment

from simulator.cli import main


@pytest.mark.slow
def test_summary_gives_each_search_its_share_of_exact_hypervolume_and_convergence_is_drawn(tmp_path):
    experiment = an_experiment(name="fronts", search={"methods": ["cloud", "autosplit", "exact", "optuna"],
                                                      "budgets": {"optuna": {"trials": 200}}},
                               output={"plot_formats": ["png"]})
    path = tmp_path / "fronts.yaml"
    path.write_text(yaml.safe_dump(experiment, sort_keys=False))
    out = tmp_path / "out"
    assert main(["run", str(path), "--out", str(out), "--no-progress"]) == 0
    baselines = pd.read_csv(out / "baselines.csv").set_index("method")
    exact = baselines.at["exact", "hypervolume"]
    assert exact > 0
    summary = (out / "summary.md").read_text()
    for method in ("autosplit", "exact", "optuna"):
        row = re.search(rf"^\| {method} \| ([0-9.e-]+) \| ([0-9.]+)% \|$", summary, re.M)
        assert row, method
        assert float(row.group(1)) == pytest.approx(baselines.at[method, "hypervolume"], rel=1e-3)
        assert float(row.group(2)) == pytest.approx(100 * baselines.at[method, "hypervolume"] / exact, abs=0.06)
    assert not re.search(r"^\| cloud \| [0-9.e-]+ \| [0-9.]+% \|$", summary, re.M)  # baselines are single plans
    import matplotlib.image

    assert matplotlib.image.imread(out / "convergence.png").shape[0] > 200
