"""Writing and reading statsmodels results with their own ``save``/``load_pickle``.

Imported only when a statsmodels object (or a ``statsmodels`` flavor version) is handled.

statsmodels has no other format: ``save`` pickles the results object (model, data and fit). The
plugin therefore records ``safe: false`` and, whatever the record says, unpickles only with
``trust=True``: a record edited to ``safe: true`` changes nothing.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from modelstore_core.plugin_api import (
    CorruptArtifactError,
    CorruptRecordError,
    Flavor,
    UntrustedArtifactError,
    UsageError,
    VersionFiles,
    model_file,
    qualified_name,
)

from . import FLAVOR, PLUGIN

FILE = "model.pickle"
#: Fixed, so that the bytes do not change with the Python that writes them (readable since Python 3.4).
PROTOCOL = 4
#: Attributes that results set on themselves when a summary is computed (statsmodels 0.14/0.15),
#: derived like the cache: not stored, so that printing a summary does not change the bytes.
LAZY_ATTRIBUTES = {"diagn", "_summary_cache", "_nobs_int"}


def serialize(model: Any, directory: Path) -> Flavor:
    from statsmodels.base.model import Results
    from statsmodels.base.wrapper import ResultsWrapper

    if not isinstance(model, (ResultsWrapper, Results)):
        raise UsageError(
            f"modelstore-statsmodels stores fitted results (what model.fit() returns); {qualified_name(model)} is not one: "
            "fit it first and store the results"
        )
    # What results.save() writes (a pickle of the results; load_pickle reads it), without the caches.
    with open(directory / FILE, "wb") as f:
        _Pickler(f, protocol=PROTOCOL).dump(model)
    return Flavor(
        name=FLAVOR,
        format="pickle",
        plugin=PLUGIN,
        model_class=qualified_name(model),
        safe=False,
        dependencies=["statsmodels"],
        options={"file": FILE},
    )


class _Pickler(pickle.Pickler):
    """``pickle`` as ``results.save`` uses it, less the caches of derived values.

    statsmodels results, models and their data keep a ``_cache`` of what has been computed so far
    (``aic``, ``bse``, the names of the columns, a summary's statistics); reading metadata or
    printing a summary fills it, so the same results would give other bytes at each upload. The
    caches are written empty (the caller's objects are untouched) and refill on first use after
    loading; so are the few statistics ``summary()`` keeps as plain attributes
    (:data:`LAZY_ATTRIBUTES`).
    """

    def reducer_override(self, obj: Any) -> Any:
        if (type(obj).__module__ or "").startswith("statsmodels.") and "_cache" in getattr(obj, "__dict__", {}):
            reduced = obj.__reduce_ex__(PROTOCOL)
            if isinstance(reduced, tuple) and len(reduced) >= 3 and isinstance(reduced[2], dict) and "_cache" in reduced[2]:
                state = {k: v for k, v in reduced[2].items() if k not in LAZY_ATTRIBUTES}
                return (*reduced[:2], {**state, "_cache": {}}, *reduced[3:])
        return NotImplemented


def deserialize(flavor: Flavor, files: list[str], options: dict[str, Any], verified: VersionFiles) -> Any:
    """The results of a ``statsmodels`` version: with ``trust`` only (checked before any byte is
    read), the pickle unpickled from a verified path (``verified.path``)."""
    file = flavor.options.get("file")
    model_file(verified.directory, files, file, option="file")  # only the check: the file comes through ``verified``
    if flavor.format != "pickle":
        raise CorruptRecordError("the version record", "flavor.format", f"is {flavor.format[:40]!r}; statsmodels versions are 'pickle'")
    if not options.get("trust"):
        raise UntrustedArtifactError(
            f"this {flavor.model_class} is a statsmodels pickle (statsmodels saves results no other way), and unpickling "
            "can run arbitrary code; pass trust=True to load() only if you trust whoever could write to this store"
        )
    from statsmodels.iolib.smpickle import load_pickle

    path = verified.path(file)  # IntegrityError unless it holds the recorded bytes
    try:
        return load_pickle(str(path))
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError) as exc:
        # Garbage or a pickle of something else; what a hostile pickle runs is what trust=True allowed.
        raise CorruptArtifactError(file, f"it does not unpickle ({type(exc).__name__}: {str(exc)[:200]})") from exc
