"""Pod networking through CNI, by the spec: the first network configuration in `--cni-conf-dir`,
plugins from `--cni-bin-dir`, executed by `cni.invoke` (interface `eth0`, like every runtime)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cni import invoke
from cni.errors import CniError
from cri.errors import RuntimeFailure

IFNAME = "eth0"


class CniNetwork:
    def __init__(self, conf_dir: str, bin_dirs: Sequence[str], cache_dir: str) -> None:
        self.conf_dir = conf_dir
        self.bin_dirs = list(bin_dirs)
        self.cache_dir = cache_dir

    def _conflist(self) -> invoke.NetworkConfigList:
        try:
            return invoke.load_conf_dir(self.conf_dir)
        except CniError as err:
            raise RuntimeFailure(f"no usable CNI configuration in {self.conf_dir}: {err}") from err

    def attach(
        self, sandbox_id: str, netns: str, *, args: Mapping[str, str], port_mappings: list[dict[str, Any]]
    ) -> list[str]:
        conflist = self._conflist()
        try:
            result = invoke.add(
                conflist,
                sandbox_id,
                netns,
                IFNAME,
                self.bin_dirs,
                args=dict(args),
                capability_args={"portMappings": port_mappings},
                cache_dir=self.cache_dir,
            )
        except CniError as err:
            raise RuntimeFailure(f"CNI ADD for sandbox {sandbox_id}: {err}") from err
        return invoke.pod_ips(result, IFNAME) or invoke.pod_ips(result)

    def detach(
        self, sandbox_id: str, netns: str, *, args: Mapping[str, str], port_mappings: list[dict[str, Any]]
    ) -> None:
        conflist = self._conflist()
        try:
            invoke.delete(
                conflist,
                sandbox_id,
                netns,
                IFNAME,
                self.bin_dirs,
                args=dict(args),
                capability_args={"portMappings": port_mappings},
                cache_dir=self.cache_dir,
            )
        except CniError as err:
            raise RuntimeFailure(f"CNI DEL for sandbox {sandbox_id}: {err}") from err

    def status(self) -> tuple[bool, str]:
        try:
            conflist = invoke.load_conf_dir(self.conf_dir)
        except CniError as err:
            return False, f"cni config uninitialized: {err}"
        for plugin in conflist.plugins:
            try:
                invoke.find_plugin(plugin["type"], self.bin_dirs)
            except CniError as err:
                return False, str(err)
        return True, ""
