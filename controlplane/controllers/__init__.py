"""Level-triggered controllers: informer → rate-limited work queue → `reconcile(key)`.
`controlplane.manager` runs them (and the scheduler) under leader election."""

from controlplane.controllers.base import Context, Controller, SharedInformers
from controlplane.controllers.config import ControllerConfig

__all__ = ["Context", "Controller", "ControllerConfig", "SharedInformers"]
