"""modelstore-oci: push versions to any OCI registry and pull them back, as CNCF ModelPack artifacts.

``store.push("churn", "oci://ghcr.io/team/churn")`` (``modelstore push churn oci://...``) and
``store.pull("oci://ghcr.io/team/churn:3")``; the format is :mod:`.artifact`'s, the wire
:mod:`.registry`'s. The entry point names the plugin object, ``oci = "modelstore_oci:plugin"``.
"""

from __future__ import annotations

from typing import Any

from modelstore_core.plugin_api import TransportPlugin


class OCIPlugin(TransportPlugin):
    transports = ("oci",)

    def open_transport(self, ref: str, scheme: str, options: dict[str, Any]):
        from .transport import OCITransport  # requests loads only when a registry is used

        return OCITransport(ref, options)


plugin = OCIPlugin()
