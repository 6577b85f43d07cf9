import warnings

import pytest
from lightning_models import REGRESSOR


@pytest.fixture(scope="session")
def regressor_code():
    from modelstore_core.testing.flavors import build

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build(REGRESSOR)
