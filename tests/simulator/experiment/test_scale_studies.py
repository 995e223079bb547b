"""Shared and resumable Optuna studies on real storages: two `autosplit worker` processes on one PostgreSQL
study, and a run killed with SIGKILL that resumes from its journal file."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
import yaml
from support import REPO, an_experiment

from simulator.cli import main
from simulator.experiment import settings
from simulator.experiment.loading import load_experiment
from simulator.experiment.sweep import expand
from simulator.experiment.worker import forget_studies
from simulator.search.optuna_storage import open_storage

COMPLETE = (optuna.trial.TrialState.COMPLETE,)
# a storage write costs milliseconds per parameter (Optuna logs each one): small budgets keep this fast
STUDY = an_experiment(
    search={"methods": ["optuna"], "budgets": {"optuna": {"trials": 10}}},
    seed=0,
    output={"max_plan_rows": 100, "plot_formats": []},
)


def _experiment(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**STUDY, **changes}, sort_keys=False))
    return path


def _study_name(path: Path) -> str:
    loaded = load_experiment(str(path), [])
    return settings.study_name(expand(loaded)[0], "optuna", settings.budget_for(loaded, "optuna"))


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "simulator.cli", *args]


def _complete(storage: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=open_storage(storage))
    return study.get_trials(deepcopy=False, states=COMPLETE)


def test_two_workers_on_one_postgres_study_record_every_trial_once(tmp_path, postgres_url):
    url = postgres_url
    path = _experiment(tmp_path)
    name = _study_name(path)
    forget_studies(url, [name])  # a leftover of an earlier run of this test would hold the budget already
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    try:
        workers = [subprocess.Popen(_cli("worker", str(path), "--storage", url, "--seed", str(seed), "--format",
                                         "json"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    cwd=tmp_path, env=environment)
                   for seed in (11, 12)]
        outputs = [worker.communicate(timeout=120) for worker in workers]
        for worker, (out, err) in zip(workers, outputs):
            assert worker.returncode == 0, err[-3000:]
            assert "autosplit-test" not in out + err  # the URL's password is never printed
        reports = [json.loads(out)["cells"][0] for out, _ in outputs]
        assert [r["seed"] for r in reports] == [11, 12] and {r["study"] for r in reports} == {name}
        trials = optuna.load_study(study_name=name, storage=open_storage(url)).get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        # every trial that either worker told is in the study exactly once, and none was left behind
        # (warm-start plans beyond the budget stay queued as WAITING; none is RUNNING or FAILED)
        assert sum(r["trials_run"] for r in reports) == len(complete)
        assert {t.state for t in trials} <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.WAITING}
        assert sorted(t.number for t in trials) == list(range(len(trials)))
        # the budget is the study's: a worker stops once it is reached (each may finish the batch it asked)
        budget = STUDY["search"]["budgets"]["optuna"]["trials"]
        assert budget <= len(complete) <= 2 * budget
        assert all(len(t.values) >= 2 and t.params for t in complete)
    finally:
        forget_studies(url, [name])


@pytest.mark.slow
def test_run_killed_mid_study_resumes_from_its_journal_keeping_every_completed_trial(tmp_path):
    trials = 240  # several batches of tells into the journal: a kill after the first trials lands mid-study
    path = _experiment(tmp_path, search={"methods": ["optuna"], "budgets": {"optuna": {"trials": trials}}})
    journal = tmp_path / "studies" / "study.log"
    out = tmp_path / "results"
    name = _study_name(path)
    process = subprocess.Popen(_cli("run", str(path), "--out", str(out), "--storage", str(journal), "--no-progress"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    before: list[optuna.trial.FrozenTrial] = []
    deadline = time.monotonic() + 90
    storage = None  # one reader, which replays only what was appended since its last look
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if journal.is_file():
                storage = storage or open_storage(str(journal))
                try:
                    before = optuna.load_study(study_name=name, storage=storage).get_trials(states=COMPLETE)
                except KeyError:  # the study is not created yet
                    before = []
                if len(before) >= 3:
                    break
            time.sleep(0.1)
        assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()[-2000:]}"
        assert len(before) >= 3, "three trials did not complete within 90 s"
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
    killed_with = {t.number: (t.params, t.values) for t in _complete(str(journal), name)}
    assert len(killed_with) < trials, "the study had finished before the kill"
    assert not (out / "summary.md").exists()

    assert main(["run", str(path), "--out", str(out), "--storage", str(journal), "--resume", "--no-progress"]) == 0
    after = _complete(str(journal), name)
    numbers = [t.number for t in after]
    assert len(numbers) == len(set(numbers)) == trials  # the budget, with no trial run twice
    kept = {t.number: (t.params, t.values) for t in after if t.number in killed_with}
    assert kept == killed_with  # every trial completed before the kill is kept, unchanged
    assert (out / "summary.md").is_file()
    plans = pd.read_csv(out / "plans.csv")
    assert (plans["method"] == "optuna").any()


def test_storage_password_never_reaches_the_results_directory(tmp_path, capsys, postgres_url):
    url = postgres_url
    password = url.split("://", 1)[1].split("@", 1)[0].partition(":")[2]
    if not password:
        pytest.skip("the test URL has no password")
    path = _experiment(tmp_path, search={"methods": ["optuna"], "budgets": {"optuna": {"trials": 4}}})
    name = _study_name(path)
    out = tmp_path / "out"
    try:
        assert main(["run", str(path), "--out", str(out), "--set", f"storage={url}", "--no-progress"]) == 0
        captured = capsys.readouterr()
        assert password not in captured.out + captured.err
        for file in out.rglob("*"):
            if file.is_file():
                assert password.encode() not in file.read_bytes(), file
        resolved = yaml.safe_load((out / "config.resolved.yaml").read_text())
        assert resolved["storage"].startswith("postgresql://") and "***" in resolved["storage"]
    finally:
        forget_studies(url, [name])


def test_worker_without_a_shared_storage_or_optuna_is_a_one_line_error(tmp_path, capsys):
    path = _experiment(tmp_path)
    assert main(["worker", str(path)]) == 2
    assert "needs a shared storage" in capsys.readouterr().err
    path = _experiment(tmp_path, search={"methods": ["cloud"]})
    assert main(["worker", str(path), "--storage", str(tmp_path / "s.log")]) == 2
    message = capsys.readouterr().err.strip()
    assert "no optuna" in message and "\n" not in message
