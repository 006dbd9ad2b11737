"""Docker/OCI image references: parsing and normalization (pure).

Grammar (distribution/reference `reference.go`)::

    reference  := name [ ":" tag ] [ "@" digest ]
    name       := [ domain "/" ] path-component ( "/" path-component )*
    domain     := host [ ":" port ]        ; the first component is a domain only if it contains
                                           ; "." or ":", is "localhost", or has an upper-case letter
    component  := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
    tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest     := "sha256:" 64 lower-case hex

Normalization follows docker: no domain means `docker.io`, a single component on docker.io gets
`library/`, no tag and no digest means `:latest`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cri.images.errors import InvalidReference

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DOCKER_HUB_REGISTRY = "registry-1.docker.io"
OFFICIAL_REPO_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_TOTAL_MAX = 255

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[a-f0-9]{64}")
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
)
_HEX64 = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class Reference:
    """A parsed, normalized reference. `str()` gives the canonical form."""

    domain: str
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        """`domain/path`, the repository name used as the key for tags and repo digests."""
        return f"{self.domain}/{self.path}"

    @property
    def registry_host(self) -> str:
        """Where the registry API lives: Docker Hub's API host differs from its name."""
        return DOCKER_HUB_REGISTRY if self.domain == DEFAULT_DOMAIN else self.domain

    @property
    def object(self) -> str:
        """What to ask the registry's manifests endpoint for: the digest wins over the tag."""
        return self.digest or self.tag

    def with_tag(self, tag: str) -> Reference:
        return Reference(self.domain, self.path, tag=tag)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost" and first.lower() == first):
        return DEFAULT_DOMAIN, name
    return first, rest


def parse_reference(ref: str) -> Reference:
    """Parse and normalize `ref`; raise InvalidReference saying what is wrong."""
    if not ref:
        raise InvalidReference(ref, "empty reference")
    if ref != ref.strip():
        raise InvalidReference(ref, "surrounding whitespace")
    if _HEX64.fullmatch(ref):
        raise InvalidReference(ref, "a 64-character hex string is an image id, not a reference")
    remainder, at, digest = ref.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise InvalidReference(ref, f"digest {digest!r} is not sha256:<64 lower-case hex>")
    # A ':' after the last '/' separates the tag; one before it belongs to a registry port.
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    tag = ""
    name = remainder
    if colon > slash:
        name, tag = remainder[:colon], remainder[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(ref, f"tag {tag!r} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
    if not name:
        raise InvalidReference(ref, "empty repository name")
    domain, path = _split_domain(name)
    if not _HOST.fullmatch(domain):
        raise InvalidReference(ref, f"registry host {domain!r} is not a valid host[:port]")
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            why = "repository name must be lowercase" if component.lower() != component else None
            raise InvalidReference(ref, why or f"path component {component!r} is not [a-z0-9] separated by . _ __ -")
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_REPO_PREFIX + path
    if len(domain) + 1 + len(path) > NAME_TOTAL_MAX:
        raise InvalidReference(ref, f"repository name longer than {NAME_TOTAL_MAX} characters")
    if not tag and not digest:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag=tag, digest=digest)


def normalize_ref(ref: str) -> str:
    """`busybox` → `docker.io/library/busybox:latest`; raises InvalidReference."""
    return str(parse_reference(ref))


def is_digest(value: str) -> bool:
    return _DIGEST.fullmatch(value) is not None
