"""The conformance kit as a pytest plugin, switched on by the suites that use it: its fixtures need
no import, a failing contract check shows what was expected and what came back, and a suite that
does not switch it on gets none of it."""

from __future__ import annotations

pytest_plugins = ["pytester"]


def test_kit_fixtures_need_no_import_and_failures_show_values(pytester):
    pytester.makepyfile(
        test_broken_backend='''
        import pytest

        from modelstore_core.default_plugins.local_storage import LocalStorage
        from modelstore_core.testing import StorageContract


        class Reversed(LocalStorage):
            """Lists keys in descending order: breaks the listing contract."""

            def list(self, prefix, *, start_after=None, delimiter=None):
                return iter(sorted(super().list(prefix, start_after=start_after, delimiter=delimiter), key=lambda i: i.key, reverse=True))


        class TestReversed(StorageContract):
            @pytest.fixture
            def storage(self, tmp_path):
                return Reversed(tmp_path / "s")


        def test_fixtures_from_the_plugin(store, fresh, tmp_path):
            import os

            assert os.environ["MODELSTORE_URL"].startswith(str(tmp_path))  # isolated by the ini option
            assert store.url == fresh().url
        '''
    )
    pytester.makeconftest('pytest_plugins = ["modelstore_core.testing.pytest_plugin"]\n')  # as docs/plugins.md says
    pytester.makeini("[pytest]\nmodelstore_isolate = true\n")
    result = pytester.runpytest_subprocess("-q", "-k", "order or fixtures_from_the_plugin")
    result.assert_outcomes(passed=1, failed=1)
    # A rewritten assert prints both sides, not a bare AssertionError.
    result.stdout.re_match_lines([r"E\s+(AssertionError: )?assert \[.*\] == \[.*\]"])


def test_an_unrelated_suite_gets_no_fixture_from_the_kit(pytester):
    """A project that merely has modelstore-core installed keeps its own fixture names: no `store`."""
    pytester.makepyfile(
        test_unrelated="""
        import pytest

        @pytest.mark.parametrize("name", ["store", "fresh", "isolated"])
        def test_no_fixture_of_that_name(request, name):
            with pytest.raises(pytest.FixtureLookupError):
                request.getfixturevalue(name)
        """
    )
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    # Switched on with -p, the same names come from the kit.
    switched_on = pytester.runpytest_subprocess("-q", "-p", "modelstore_core.testing.pytest_plugin", "-k", "fresh")
    switched_on.assert_outcomes(failed=1)
