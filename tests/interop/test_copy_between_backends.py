"""Copy and mirror between every pair of backend kinds: local, S3 (moto) and GCS (fake-gcs-server)."""

from __future__ import annotations

import pytest

from modelstore_core.testing import CopyContract
from modelstore_core.testing.copy_contract import COPY_STEPS

PAIRS = [("local", "s3"), ("s3", "local"), ("local", "gs"), ("gs", "local"), ("s3", "gs"), ("gs", "s3")]


def pair_class(src: str, dst: str, crash_step: str) -> type:
    class Pair(CopyContract):
        # Every step is killed between local stores (the core's tests); here one per pair, in turn.
        crash_steps = (crash_step,)

        @pytest.fixture
        def source_url(self, urls):
            return urls(src)

        @pytest.fixture
        def target_url(self, urls):
            return urls(dst)

    Pair.__name__ = Pair.__qualname__ = f"Test{src.title()}To{dst.title()}"
    return Pair


for _i, (_src, _dst) in enumerate(PAIRS):
    _cls = pair_class(_src, _dst, COPY_STEPS[_i % len(COPY_STEPS)])
    globals()[_cls.__name__] = _cls
