"""``python -m modelstore_core``: the ``modelstore`` command line."""

from modelstore_core.cli import main

if __name__ == "__main__":
    main()
