"""Data the image store hands out: images, their runtime config, and store usage."""

from __future__ import annotations

from dataclasses import dataclass, field

# Media types (OCI image-spec media-types.md; Docker image manifest v2 schema 2).
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_LAYER_TAR = "application/vnd.docker.image.rootfs.diff.tar"

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})


@dataclass(frozen=True)
class Descriptor:
    """OCI content descriptor (descriptor.md): what a blob is, its digest and size."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str = ""


@dataclass(frozen=True)
class Manifest:
    """An image manifest (OCI or Docker schema 2): one config blob and the layers, bottom first."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]


@dataclass(frozen=True)
class Index:
    """An OCI image index or Docker manifest list: one manifest per platform."""

    media_type: str
    manifests: tuple[Descriptor, ...]


@dataclass(frozen=True)
class ImageConfig:
    """The parts of an image config (config.md `config` object) a runtime uses to start a process."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    working_dir: str = ""
    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    stop_signal: str = ""
    volumes: tuple[str, ...] = ()

    def uid_and_username(self) -> tuple[int | None, str]:
        """CRI `Image.uid` / `Image.username` from `User` ("1000", "1000:50", "app", "app:grp"): a
        numeric user part is a uid, anything else a name resolved later inside the image."""
        user = self.user.partition(":")[0]
        if not user:
            return None, ""
        return (int(user), "") if user.isdigit() else (None, user)


@dataclass(frozen=True)
class Image:
    """One image in the store.

    `id` is the config digest (what docker and containerd call the image id; stable across tags and
    registries). `repo_tags` are normalized `name:tag` references, `repo_digests` `name@sha256:…`.
    `size` is the sum of the layer and config blob sizes as stored. `pinned` images (the pause image)
    are never garbage-collected by the kubelet.
    """

    id: str
    repo_tags: tuple[str, ...]
    repo_digests: tuple[str, ...]
    size: int
    manifest_digest: str
    diff_ids: tuple[str, ...]
    config: ImageConfig
    pinned: bool = False


@dataclass(frozen=True)
class FsUsage:
    """Usage of the filesystem holding image content, for CRI `ImageFsInfo`."""

    mountpoint: str
    used_bytes: int
    inodes_used: int
    timestamp_ns: int


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials for one registry, shaped like CRI `AuthConfig`.

    `auth` is base64 `user:password` (docker config.json style) and is used when username is empty;
    `registry_token` is a bearer token sent as is.
    """

    username: str = ""
    password: str = ""
    auth: str = ""
    identity_token: str = ""
    registry_token: str = ""
