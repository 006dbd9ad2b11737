"""gRPC edge: RuntimeService and ImageService servicers. Maps our records to CRI messages and our
exceptions to status codes — nothing below this module knows about gRPC."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from concurrent import futures
from typing import Any, TypeVar

import grpc

from cri import messages
from cri.api import api_pb2, api_pb2_grpc
from cri.cgroups import CgroupStats
from cri.errors import AlreadyExists, CriError, InvalidArgument, InvalidTransition, NotFound, Timeout
from cri.images.errors import AuthError, DigestMismatch, ImageError, ImageNotFound, InvalidImage, InvalidReference
from cri.runtime import Runtime
from cri.state import ContainerState, SandboxState
from cri.store import SandboxRecord, sandbox_config
from cri.streaming import StreamingServer

log = logging.getLogger("tinykube.cri")

RUNTIME_NAME = "tinykube"
RUNTIME_VERSION = "0.1.0"
API_VERSION = "v1"

_CODES: list[tuple[type[Exception], grpc.StatusCode]] = [
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (ImageNotFound, grpc.StatusCode.NOT_FOUND),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidReference, grpc.StatusCode.INVALID_ARGUMENT),
    (DigestMismatch, grpc.StatusCode.DATA_LOSS),
    (InvalidImage, grpc.StatusCode.INVALID_ARGUMENT),
    (AuthError, grpc.StatusCode.UNAUTHENTICATED),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (InvalidTransition, grpc.StatusCode.FAILED_PRECONDITION),
    (Timeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (ImageError, grpc.StatusCode.UNAVAILABLE),
    (CriError, grpc.StatusCode.INTERNAL),
]

F = TypeVar("F", bound=Callable[..., Any])


def status_code(err: Exception) -> grpc.StatusCode:
    for kind, code in _CODES:
        if isinstance(err, kind):
            return code
    return grpc.StatusCode.UNKNOWN


def rpc(method: F) -> F:
    """Turn our exceptions into gRPC status codes with their message."""

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except (CriError, ImageError) as err:
            code = status_code(err)
            if code in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN):
                log.warning("%s failed: %s", method.__name__, err)
            context.abort(code, str(err))
        except OSError as err:
            log.exception("%s failed", method.__name__)
            context.abort(grpc.StatusCode.INTERNAL, f"{method.__name__}: {err}")

    return wrapper  # type: ignore[return-value]


def _labels_match(labels: Any, selector: Any) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---- RuntimeService ------------------------------------------------------------------------------


class RuntimeServicer(api_pb2_grpc.RuntimeServiceServicer):  # type: ignore[misc]
    def __init__(self, runtime: Runtime, streaming: StreamingServer | None = None) -> None:
        self.rt = runtime
        self.streaming = streaming

    @rpc
    def Version(self, request: Any, context: Any) -> Any:
        return api_pb2.VersionResponse(
            version="0.1.0", runtime_name=RUNTIME_NAME, runtime_version=RUNTIME_VERSION, runtime_api_version=API_VERSION
        )

    @rpc
    def Status(self, request: Any, context: Any) -> Any:
        ready, message = self.rt.deps.network.status()
        conditions = [
            api_pb2.RuntimeCondition(type="RuntimeReady", status=True),
            api_pb2.RuntimeCondition(
                type="NetworkReady", status=ready, reason="" if ready else "NetworkPluginNotReady", message=message
            ),
        ]
        return api_pb2.StatusResponse(
            status=api_pb2.RuntimeStatus(conditions=conditions),
            runtime_handlers=[api_pb2.RuntimeHandler(name="", features=api_pb2.RuntimeHandlerFeatures())],
            features=api_pb2.RuntimeFeatures(supplemental_groups_policy=False),
        )

    @rpc
    def RuntimeConfig(self, request: Any, context: Any) -> Any:
        return api_pb2.RuntimeConfigResponse(linux=api_pb2.LinuxRuntimeConfiguration(cgroup_driver=api_pb2.CGROUPFS))

    @rpc
    def UpdateRuntimeConfig(self, request: Any, context: Any) -> Any:
        return api_pb2.UpdateRuntimeConfigResponse()

    @rpc
    def RunPodSandbox(self, request: Any, context: Any) -> Any:
        if not request.HasField("config"):
            raise InvalidArgument("config is required")
        return api_pb2.RunPodSandboxResponse(
            pod_sandbox_id=self.rt.run_sandbox(request.config, request.runtime_handler)
        )

    @rpc
    def StopPodSandbox(self, request: Any, context: Any) -> Any:
        self.rt.stop_sandbox(request.pod_sandbox_id)
        return api_pb2.StopPodSandboxResponse()

    @rpc
    def RemovePodSandbox(self, request: Any, context: Any) -> Any:
        self.rt.remove_sandbox(request.pod_sandbox_id)
        return api_pb2.RemovePodSandboxResponse()

    @rpc
    def PodSandboxStatus(self, request: Any, context: Any) -> Any:
        rec, state = self.rt.sandbox(request.pod_sandbox_id)
        info = {"pid": str(rec.pid), "cgroup": rec.pod_cgroup} if request.verbose else {}
        return api_pb2.PodSandboxStatusResponse(
            status=messages.sandbox_status(rec, state), info=info, timestamp=time.time_ns()
        )

    @rpc
    def ListPodSandbox(self, request: Any, context: Any) -> Any:
        f = request.filter
        items = []
        for rec, state in self.rt.list_sandboxes():
            config = sandbox_config(rec)
            if f.id and not rec.id.startswith(f.id):
                continue
            if f.HasField("state") and messages.sandbox_state(state) != f.state.state:
                continue
            if not _labels_match(config.labels, f.label_selector):
                continue
            items.append(
                api_pb2.PodSandbox(
                    id=rec.id,
                    metadata=messages.sandbox_metadata(rec),
                    state=messages.sandbox_state(state),
                    created_at=rec.created_at,
                    labels=dict(config.labels),
                    annotations=dict(config.annotations),
                    runtime_handler=rec.runtime_handler,
                )
            )
        return api_pb2.ListPodSandboxResponse(items=items)

    @rpc
    def CreateContainer(self, request: Any, context: Any) -> Any:
        if not request.HasField("config"):
            raise InvalidArgument("config is required")
        cid = self.rt.create_container(request.pod_sandbox_id, request.config)
        return api_pb2.CreateContainerResponse(container_id=cid)

    @rpc
    def StartContainer(self, request: Any, context: Any) -> Any:
        self.rt.start_container(request.container_id)
        return api_pb2.StartContainerResponse()

    @rpc
    def StopContainer(self, request: Any, context: Any) -> Any:
        self.rt.stop_container(request.container_id, float(request.timeout))
        return api_pb2.StopContainerResponse()

    @rpc
    def RemoveContainer(self, request: Any, context: Any) -> Any:
        self.rt.remove_container(request.container_id)
        return api_pb2.RemoveContainerResponse()

    @rpc
    def ListContainers(self, request: Any, context: Any) -> Any:
        f = request.filter
        out = []
        for rec, seen in self.rt.list_containers():
            if f.id and not rec.id.startswith(f.id):
                continue
            if f.pod_sandbox_id and not rec.sandbox_id.startswith(f.pod_sandbox_id):
                continue
            if f.HasField("state") and messages.CONTAINER_STATES[seen.state] != f.state.state:
                continue
            item = messages.container(rec, seen)
            if not _labels_match(item.labels, f.label_selector):
                continue
            out.append(item)
        return api_pb2.ListContainersResponse(containers=out)

    @rpc
    def ContainerStatus(self, request: Any, context: Any) -> Any:
        rec, seen = self.rt.container(request.container_id)
        info = {"pid": str(seen.pid), "sandboxID": rec.sandbox_id} if request.verbose else {}
        return api_pb2.ContainerStatusResponse(status=messages.container_status(rec, seen), info=info)

    @rpc
    def UpdateContainerResources(self, request: Any, context: Any) -> Any:
        self.rt.containers.update_resources(request.container_id, request.linux)
        return api_pb2.UpdateContainerResourcesResponse()

    @rpc
    def ReopenContainerLog(self, request: Any, context: Any) -> Any:
        self.rt.containers.reopen_log(request.container_id)
        return api_pb2.ReopenContainerLogResponse()

    @rpc
    def ExecSync(self, request: Any, context: Any) -> Any:
        result = self.rt.exec_sync(request.container_id, list(request.cmd), float(request.timeout))
        return api_pb2.ExecSyncResponse(stdout=result.stdout, stderr=result.stderr, exit_code=result.exit_code)

    def _unavailable(self, context: Any, what: str) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{what} streaming is not served by this tinykube cri")

    @rpc
    def Exec(self, request: Any, context: Any) -> Any:
        self.rt.container(request.container_id)
        if not request.cmd:
            raise InvalidArgument("cmd must not be empty")
        if not (request.stdin or request.stdout or request.stderr):
            raise InvalidArgument("one of stdin, stdout and stderr must be set")
        if self.streaming is None:
            return self._unavailable(context, "exec")
        return api_pb2.ExecResponse(
            url=self.streaming.exec_url(request.container_id, list(request.cmd), tty=request.tty)
        )

    @rpc
    def Attach(self, request: Any, context: Any) -> Any:
        rec, _ = self.rt.container(request.container_id)
        if not (request.stdin or request.stdout or request.stderr):
            raise InvalidArgument("one of stdin, stdout and stderr must be set")
        if request.tty != bool(rec.launch.get("tty")):
            raise InvalidArgument(f"tty={request.tty} does not match the container's tty={rec.launch.get('tty')}")
        if self.streaming is None:
            return self._unavailable(context, "attach")
        return api_pb2.AttachResponse(url=self.streaming.attach_url(request.container_id, tty=request.tty))

    @rpc
    def PortForward(self, request: Any, context: Any) -> Any:
        self.rt.sandbox(request.pod_sandbox_id)
        if self.streaming is None:
            return self._unavailable(context, "port-forward")
        return api_pb2.PortForwardResponse(url=self.streaming.portforward_url(request.pod_sandbox_id))

    @rpc
    def ContainerStats(self, request: Any, context: Any) -> Any:
        rec = self.rt.containers.get(request.container_id)
        return api_pb2.ContainerStatsResponse(stats=messages.container_stats(rec, self.rt.containers.stats(rec.id)))

    @rpc
    def ListContainerStats(self, request: Any, context: Any) -> Any:
        f = request.filter
        out = []
        for rec, seen in self.rt.list_containers():
            if seen.state != ContainerState.RUNNING:
                continue
            if f.id and not rec.id.startswith(f.id):
                continue
            if f.pod_sandbox_id and not rec.sandbox_id.startswith(f.pod_sandbox_id):
                continue
            stats = messages.container_stats(rec, self.rt.containers.stats(rec.id))
            if _labels_match(stats.attributes.labels, f.label_selector):
                out.append(stats)
        return api_pb2.ListContainerStatsResponse(stats=out)

    def _pod_stats(self, rec: SandboxRecord) -> Any:
        config = sandbox_config(rec)
        now = time.time_ns()
        try:
            s = self.rt.deps.cgroups.stats(rec.pod_cgroup)
        except OSError:
            s = CgroupStats()
        containers = [
            messages.container_stats(c, self.rt.containers.stats(c.id)) for c in self.rt.containers.of_sandbox(rec.id)
        ]
        return api_pb2.PodSandboxStats(
            attributes=api_pb2.PodSandboxAttributes(
                id=rec.id,
                metadata=messages.sandbox_metadata(rec),
                labels=dict(config.labels),
                annotations=dict(config.annotations),
            ),
            linux=api_pb2.LinuxPodSandboxStats(
                cpu=api_pb2.CpuUsage(timestamp=now, usage_core_nano_seconds=messages.uint(s.cpu_usage_ns)),
                memory=api_pb2.MemoryUsage(
                    timestamp=now,
                    working_set_bytes=messages.uint(s.memory_working_set),
                    usage_bytes=messages.uint(s.memory_usage),
                    rss_bytes=messages.uint(s.memory_rss),
                    page_faults=messages.uint(s.page_faults),
                    major_page_faults=messages.uint(s.major_page_faults),
                ),
                process=api_pb2.ProcessUsage(timestamp=now, process_count=messages.uint(s.pids)),
                containers=containers,
            ),
        )

    @rpc
    def PodSandboxStats(self, request: Any, context: Any) -> Any:
        rec, _ = self.rt.sandbox(request.pod_sandbox_id)
        return api_pb2.PodSandboxStatsResponse(stats=self._pod_stats(rec))

    @rpc
    def ListPodSandboxStats(self, request: Any, context: Any) -> Any:
        f = request.filter
        out = []
        for rec, state in self.rt.list_sandboxes():
            if state != SandboxState.READY or (f.id and not rec.id.startswith(f.id)):
                continue
            if _labels_match(sandbox_config(rec).labels, f.label_selector):
                out.append(self._pod_stats(rec))
        return api_pb2.ListPodSandboxStatsResponse(stats=out)

    @rpc
    def ListMetricDescriptors(self, request: Any, context: Any) -> Any:
        return api_pb2.ListMetricDescriptorsResponse()

    @rpc
    def ListPodSandboxMetrics(self, request: Any, context: Any) -> Any:
        return api_pb2.ListPodSandboxMetricsResponse()


# ---- ImageService --------------------------------------------------------------------------------


class ImageServicer(api_pb2_grpc.ImageServiceServicer):  # type: ignore[misc]
    def __init__(self, store: Any, runtime: Runtime | None = None) -> None:
        self.store = store
        self.runtime = runtime

    @rpc
    def ListImages(self, request: Any, context: Any) -> Any:
        wanted = request.filter.image.image
        images = self.store.list()
        if wanted:
            match = self.store.status(wanted)
            images = [i for i in images if match is not None and i.id == match.id]
        return api_pb2.ListImagesResponse(images=[messages.image_message(i) for i in images])

    @rpc
    def ImageStatus(self, request: Any, context: Any) -> Any:
        if not request.image.image:
            raise InvalidArgument("image.image must not be empty")
        image = self.store.status(request.image.image)
        return api_pb2.ImageStatusResponse(image=messages.image_message(image) if image else None)

    @rpc
    def PullImage(self, request: Any, context: Any) -> Any:
        from cri.images.types import RegistryAuth

        if not request.image.image:
            raise InvalidArgument("image.image must not be empty")
        a = request.auth
        auth = (
            RegistryAuth(
                username=a.username,
                password=a.password,
                auth=a.auth,
                identity_token=a.identity_token,
                registry_token=a.registry_token,
            )
            if request.HasField("auth")
            else None
        )
        image = self.store.pull(request.image.image, auth)
        return api_pb2.PullImageResponse(image_ref=image.id)

    @rpc
    def RemoveImage(self, request: Any, context: Any) -> Any:
        image = self.store.status(request.image.image) if request.image.image else None
        if image is not None and self.runtime is not None:
            # Containers run on the image's unpacked layers: removing them would pull the floor away.
            users = [c.id for c in self.runtime.deps.store.containers.values() if c.image_id == image.id]
            if users:
                raise InvalidTransition("image", request.image.image, f"used by container {users[0]}", "remove")
        self.store.remove(request.image.image)
        return api_pb2.RemoveImageResponse()

    @rpc
    def ImageFsInfo(self, request: Any, context: Any) -> Any:
        usage = self.store.fs_info()
        fs = api_pb2.FilesystemUsage(
            timestamp=usage.timestamp_ns,
            fs_id=api_pb2.FilesystemIdentifier(mountpoint=usage.mountpoint),
            used_bytes=messages.uint(usage.used_bytes),
            inodes_used=messages.uint(usage.inodes_used),
        )
        return api_pb2.ImageFsInfoResponse(image_filesystems=[fs])


def serve(
    runtime: Runtime, images: Any, socket_path: str, *, streaming: StreamingServer | None = None, workers: int = 16
) -> grpc.Server:
    """Bind the unix socket (replacing a stale one) and start serving."""
    os.makedirs(os.path.dirname(socket_path) or ".", exist_ok=True)
    if os.path.exists(socket_path):
        os.unlink(socket_path)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cri"))
    api_pb2_grpc.add_RuntimeServiceServicer_to_server(RuntimeServicer(runtime, streaming), server)
    api_pb2_grpc.add_ImageServiceServicer_to_server(ImageServicer(images, runtime), server)
    server.add_insecure_port(f"unix:{socket_path}")
    server.start()
    return server
