# The flavor kit's fixtures: `isolated` (autouse: never the user's own store or cache, plugins
# rediscovered around each test), `store` and `fresh`.
from modelstore_core.testing.flavors import fresh, isolated, store  # noqa: F401
