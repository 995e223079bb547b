"""The `storage:` setting: which Optuna storage a value names, and that a URL's password never gets out."""
from __future__ import annotations

import os
import re

import optuna
import pytest

from hardware_models.errors import UserError
from simulator.search.optuna_storage import describe, mask_secrets, open_storage, storage_kind


@pytest.mark.parametrize("spec, kind", [
    (None, "memory"), ("", "memory"), ("studies/quickstart.log", "journal"), ("/tmp/a b/study.log", "journal"),
    ("postgresql://u:p@db.example:5432/autosplit", "rdb"), ("postgresql+psycopg://u@h/d", "rdb"),
    ("mysql+pymysql://u:p@h/d", "rdb"), ("sqlite:///study.db", "rdb"), ("redis://:p@h:6379/0", "redis"),
])
def test_one_setting_names_the_storage(spec, kind):
    assert storage_kind(spec) == kind


@pytest.mark.parametrize("text, masked", [
    ("postgresql://autosplit:s3cr3t@10.0.0.5:5432/studies", "postgresql://autosplit:***@10.0.0.5:5432/studies"),
    ("redis://:s3cr3t@cache:6379/0", "redis://:***@cache:6379/0"),
    ("postgresql://h/db?user=u&password=s3cr3t&sslmode=require",
     "postgresql://h/db?user=u&password=***&sslmode=require"),
    ("autosplit run x.yaml --storage mysql+pymysql://me:s3cr3t@h/d --resume",
     "autosplit run x.yaml --storage mysql+pymysql://me:***@h/d --resume"),
    ("postgresql://autosplit@h/db", "postgresql://autosplit@h/db"),
    ("studies/run.log", "studies/run.log"),
])
def test_passwords_are_masked_and_nothing_else_changes(text, masked):
    assert mask_secrets(text) == masked
    assert "s3cr3t" not in describe(text.split()[-1] if text.startswith("autosplit") else text)


def test_a_journal_file_is_created_with_its_folder_and_holds_the_study(tmp_path):
    path = tmp_path / "deep" / "folder" / "study.log"
    storage = open_storage(str(path))
    study = optuna.create_study(storage=storage, study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    again = optuna.load_study(study_name="s", storage=open_storage(str(path)))
    assert [t.number for t in again.trials] == [0, 1, 2]
    assert [t.value for t in again.trials] == [t.value for t in study.trials]


def test_a_folder_is_not_a_journal_file(tmp_path):
    with pytest.raises(UserError, match="is a directory"):
        open_storage(str(tmp_path))


def test_a_wrong_password_is_a_one_line_error_without_the_password(postgres_url):
    url = postgres_url
    wrong = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1not-the-s3cr3t@", url) if "@" in url else url
    if wrong == url:
        pytest.skip("the test URL has no password to get wrong")
    with pytest.raises(UserError) as caught:
        open_storage(wrong)
    message = str(caught.value)
    assert "not-the-s3cr3t" not in message and "\n" not in message
    assert "***" in message and "cannot open" in message


def test_the_postgres_server_holds_a_study_that_a_second_connection_reads(postgres_url):
    url = postgres_url
    name = f"autosplit-test-storage-{os.getpid()}"
    first = optuna.create_study(storage=open_storage(url), study_name=name)
    try:
        first.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        second = optuna.load_study(study_name=name, storage=open_storage(url))
        assert [t.params for t in second.trials] == [t.params for t in first.trials]
    finally:
        optuna.delete_study(study_name=name, storage=open_storage(url))
