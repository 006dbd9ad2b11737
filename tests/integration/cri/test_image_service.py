import grpc
import pytest

from cri.api import api_pb2


def test_image_service_lists_and_resolves_the_builtin_images(cri):
    images = cri.img.ListImages(api_pb2.ListImagesRequest()).images
    tags = {t for i in images for t in i.repo_tags}
    assert "docker.io/library/busybox:latest" in tags
    pause = next(i for i in images if any("pause" in t for t in i.repo_tags))
    assert pause.pinned
    for ref in ("busybox", "busybox:latest", "docker.io/library/busybox:latest"):
        st = cri.img.ImageStatus(api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image=ref))).image
        assert st.id.startswith("sha256:")
        assert st.size > 0
    filtered = cri.img.ListImages(
        api_pb2.ListImagesRequest(filter=api_pb2.ImageFilter(image=api_pb2.ImageSpec(image="busybox")))
    )
    assert [i.repo_tags[0] for i in filtered.images] == ["docker.io/library/busybox:latest"]
    fs = cri.img.ImageFsInfo(api_pb2.ImageFsInfoRequest()).image_filesystems
    assert fs[0].used_bytes.value > 0


def test_unknown_image_has_no_status_and_pull_errors_map_to_codes(cri):
    st = cri.img.ImageStatus(api_pb2.ImageStatusRequest(image=api_pb2.ImageSpec(image="nosuch:1")))
    assert not st.HasField("image")
    with pytest.raises(grpc.RpcError) as err:
        cri.img.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image="UPPER/Case::bad")))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as err:
        cri.img.PullImage(api_pb2.PullImageRequest(image=api_pb2.ImageSpec(image="127.0.0.1:1/nothing:latest")))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    # creating a container from an image that is not there is NOT_FOUND
    sid, config = cri.run_pod("p")
    with pytest.raises(grpc.RpcError) as err:
        cri.create(sid, config, ["true"], image="nosuch:1")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_an_image_in_use_cannot_be_removed_and_removal_is_idempotent(cri):
    sid, config = cri.run_pod("p")
    cid = cri.create(sid, config, ["true"])
    spec = api_pb2.ImageSpec(image="busybox")
    with pytest.raises(grpc.RpcError) as err:
        cri.img.RemoveImage(api_pb2.RemoveImageRequest(image=spec))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert cid in err.value.details()
    cri.img.RemoveImage(api_pb2.RemoveImageRequest(image=api_pb2.ImageSpec(image="nosuch:1")))
