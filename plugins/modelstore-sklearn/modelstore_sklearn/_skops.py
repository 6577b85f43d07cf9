"""skops, imported without the 2 s it costs by default.

``import skops.io`` runs ``sklearn.utils.all_estimators()`` (in ``skops.io._trusted_types``) to
list the scikit-learn estimators it trusts. That walks and imports every scikit-learn package,
``sklearn.externals.array_api_compat.torch`` included, which imports torch when it is installed:
about 2 s, 1.65 s of it torch. Here skops is imported with that walk replaced by an empty list,
and whether a type is a public scikit-learn estimator is decided per name, only for the names a
file contains (:func:`is_sklearn_estimator`): the same rule as ``all_estimators``, without
importing the rest of scikit-learn.

So that code elsewhere in the process that uses skops directly keeps skops's own defaults, its
list is then replaced by one that runs the walk on first use; this plugin's own reads swap it
for an empty one while they build skops's node tree (:func:`node_tree`).
"""

from __future__ import annotations

import importlib
import inspect
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

_lock = threading.RLock()
_FAST = False  # whether skops.io was imported here with the walk skipped


class _LazyEstimatorNames(list):
    """skops's ``SKLEARN_ESTIMATOR_TYPE_NAMES``, filled by the real walk the first time it is read."""

    _filled = False

    def _fill(self) -> None:
        if not self._filled:
            from sklearn.utils import all_estimators

            self._filled = True
            self[:] = [f"{c.__module__}.{c.__name__}" for _, c in all_estimators() if c.__module__.startswith("sklearn.")]

    def __iter__(self) -> Iterator[str]:
        self._fill()
        return super().__iter__()

    def __add__(self, other: Any) -> list:
        self._fill()
        return list(super().__iter__()) + list(other)

    def __contains__(self, item: object) -> bool:
        self._fill()
        return super().__contains__(item)

    def __len__(self) -> int:
        self._fill()
        return super().__len__()


def skops_io() -> Any:
    """``skops.io``, imported without walking scikit-learn when it is not imported yet."""
    global _FAST
    import sys

    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    with _lock:
        if "skops.io" in sys.modules:
            return sys.modules["skops.io"]
        import sklearn.utils

        real = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = lambda *a, **k: []
        try:
            import skops.io
            import skops.io._general as general
        finally:
            sklearn.utils.all_estimators = real
        if isinstance(getattr(general, "SKLEARN_ESTIMATOR_TYPE_NAMES", None), list) and not general.SKLEARN_ESTIMATOR_TYPE_NAMES:
            general.SKLEARN_ESTIMATOR_TYPE_NAMES = _LazyEstimatorNames()
            _FAST = True
        return skops.io


@contextmanager
def _no_walk() -> Iterator[None]:
    if not _FAST:
        yield
        return
    import skops.io._general as general

    with _lock:
        saved = general.SKLEARN_ESTIMATOR_TYPE_NAMES
        general.SKLEARN_ESTIMATOR_TYPE_NAMES = [] if not saved._filled else saved
        try:
            yield
        finally:
            general.SKLEARN_ESTIMATOR_TYPE_NAMES = saved


def node_tree(zip_file: Any) -> Any:
    """skops's node tree of an open skops zip, built with skops's default trust (nothing is
    imported or built yet); its ``get_unsafe_set()`` minus :func:`is_sklearn_estimator` names
    are the types to audit."""
    skops_io()
    from skops.io._audit import get_tree
    from skops.io._utils import read_schema

    schema, load_context = read_schema(zip_file)
    with _no_walk():
        return get_tree(schema, load_context=load_context, trusted=None)


@lru_cache(maxsize=1024)
def is_sklearn_estimator(name: str) -> bool:
    """Whether ``name`` is one of ``all_estimators()``'s classes, which skops trusts: a public,
    non-abstract ``BaseEstimator`` subclass from scikit-learn, exposed by a public scikit-learn
    module. Only ``sklearn`` modules are imported, and not its tests or vendored packages."""
    module_name, _, class_name = name.rpartition(".")
    parts = module_name.split(".")
    if parts[0] != "sklearn" or class_name.startswith("_") or not class_name.isidentifier():
        return False
    if any(p in ("tests", "externals", "_build_utils", "__check_build", "conftest") or not p.isidentifier() for p in parts):
        return False
    public = ".".join(parts[: next((i for i, p in enumerate(parts) if p.startswith("_")), len(parts))])
    try:
        from sklearn.base import BaseEstimator

        cls = getattr(importlib.import_module(module_name), class_name, None)
        exposed = getattr(importlib.import_module(public), class_name, None)
    except Exception:  # noqa: BLE001 - not importable: not trusted
        return False
    return (
        inspect.isclass(cls)
        and cls is exposed
        and cls.__module__ == module_name
        and issubclass(cls, BaseEstimator)
        and cls is not BaseEstimator
        and not inspect.isabstract(cls)
    )


def read_back(data: bytes) -> Any:
    """Rebuild a freshly written archive, trusting all its types (the uploader's own model)."""
    sio = skops_io()
    with _no_walk():
        return sio.loads(data, trusted=sio.get_untrusted_types(data=data))
