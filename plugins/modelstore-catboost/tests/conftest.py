import pytest


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path, monkeypatch):
    """catboost writes catboost_info/ into the working directory unless told not to."""
    monkeypatch.chdir(tmp_path)
