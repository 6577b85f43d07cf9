"""Faults between the client and GCS: 5xx answers, dropped connections, lost answers, cut bodies.

Requests go through :class:`modelstore_core.testing.faults.FaultProxy`, a real HTTP forwarder in front
of fake-gcs-server; the tests are the core's ``FaultContract``.
"""

from __future__ import annotations

import pytest
from gcs_servers import GCS_ERRORS

from modelstore_core.testing import FaultContract

FAST = {"retry_deadline": 30.0}


class TestGCSFaults(FaultContract):
    endpoint_option = "endpoint"
    retry_options = {"many": FAST, "default": FAST, "few": {"retry_deadline": 2.0}, "none": {"retry_deadline": 1.0}}
    error_match = "GCS could not"
    error_bodies = GCS_ERRORS
    error_content_type = "application/json"

    @pytest.fixture
    def store_url(self, gs_url):
        return gs_url

    @pytest.fixture
    def upstream_port(self, gcs_server):
        return gcs_server.port

    @pytest.fixture
    def store_env(self, gcs_server):
        return dict(gcs_server.env)

    def is_version_write(self, method, target, body):
        return method == "POST" and b"/versions/" in body  # a multipart upload names its object in the body

    def is_states_write(self, method, target, body):
        return method == "POST" and b"/states.json" in body  # a multipart upload names its object in the body
