"""One run per results directory (issue 25): a second run into a directory in use is refused in one line naming
the holder's PID; the lock dies with its holder, so a killed run never blocks the next."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from support import REPO, an_experiment, write_yaml

from simulator.cli import main
from simulator.experiment.dir_lock import LOCK_NAME

HOLD = ("import sys, time; from pathlib import Path; from simulator.experiment.dir_lock import locked\n"
        "with locked(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)")


@pytest.mark.slow
def test_a_second_run_into_a_directory_in_use_is_refused_naming_the_pid(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    experiment = write_yaml(tmp_path / "exp.yaml", an_experiment(search={"methods": ["cloud"]}))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert main(["run", str(experiment), "--out", str(out), "--no-progress"]) == 2
        line = capsys.readouterr().err.strip()
        assert "\n" not in line and f"in use by another autosplit run (PID {holder.pid})" in line
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME], "the refused run wrote nothing"
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # the holder was killed: the kernel dropped its lock, and the run goes ahead
    assert main(["run", str(experiment), "--out", str(out), "--no-progress", "--set", "output.plot_formats=[]"]) == 0
    assert (out / "summary.md").exists()
