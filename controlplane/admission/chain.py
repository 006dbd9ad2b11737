"""The admission chain: plugins run in order on every write; the first rejection wins."""

from __future__ import annotations

from collections.abc import Sequence

from controlplane.admission.interfaces import AdmissionPlugin, Attributes, ObjectReader
from controlplane.admission.limit_ranger import LimitRanger
from controlplane.admission.namespace_lifecycle import NamespaceLifecycle
from controlplane.admission.resource_quota import ResourceQuotaAdmission
from controlplane.admission.service_account import ServiceAccountAdmission

__all__ = ["AdmissionChain", "default_chain"]


class AdmissionChain:
    def __init__(self, plugins: Sequence[AdmissionPlugin]) -> None:
        self.plugins = tuple(plugins)

    async def admit(self, attrs: Attributes) -> None:
        """Raises the first plugin's AdmissionError; mutations of earlier plugins stay on attrs.obj."""
        for plugin in self.plugins:
            await plugin.admit(attrs)


def default_chain(reader: ObjectReader, *, require_service_account: bool = True) -> AdmissionChain:
    """Kubernetes' order: lifecycle first (cheap, rejects the most), mutating plugins, quota last so
    it counts the object as the other plugins left it."""
    return AdmissionChain(
        [
            NamespaceLifecycle(reader),
            LimitRanger(reader),
            ServiceAccountAdmission(reader, require_account=require_service_account),
            ResourceQuotaAdmission(reader),
        ]
    )
