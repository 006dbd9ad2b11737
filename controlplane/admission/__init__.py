"""Admission plugins: NamespaceLifecycle, LimitRanger, ServiceAccount, ResourceQuota.

Server wiring (in its Policy.admit, after defaulting and validation):

    chain = default_chain(reader)      # reader: async get(res, ns, name) / list(res, ns) over the cache
    try: await chain.admit(request)    # apiserver.policy.AdmissionRequest satisfies `Attributes`
    except admission.Forbidden as e: 403 with e.message
    except admission.NotFound as e: 404 ; except admission.Invalid as e: 422 (e.errors)
"""

from controlplane.admission.chain import AdmissionChain, default_chain
from controlplane.admission.errors import AdmissionError, Forbidden, Invalid, NotFound
from controlplane.admission.interfaces import AdmissionPlugin, Attributes, ObjectReader
from controlplane.admission.limit_ranger import LimitRanger
from controlplane.admission.namespace_lifecycle import IMMORTAL_NAMESPACES, NamespaceLifecycle
from controlplane.admission.resource_quota import RESERVATION_SECONDS, ResourceQuotaAdmission, usage
from controlplane.admission.service_account import TOKEN_MOUNT_PATH, ServiceAccountAdmission

__all__ = [
    "IMMORTAL_NAMESPACES",
    "RESERVATION_SECONDS",
    "TOKEN_MOUNT_PATH",
    "AdmissionChain",
    "AdmissionError",
    "AdmissionPlugin",
    "Attributes",
    "Forbidden",
    "Invalid",
    "LimitRanger",
    "NamespaceLifecycle",
    "NotFound",
    "ObjectReader",
    "ResourceQuotaAdmission",
    "ServiceAccountAdmission",
    "default_chain",
    "usage",
]
