"""tinykube: the command-line entry point and the labs. The components live in their own packages
(controlplane, noded, cri, cni, netproxy)."""

__version__ = "0.1.0"
__all__ = ["__version__"]
