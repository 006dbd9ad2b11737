"""A spec-level CNI invoker for runtimes (CNI spec 1.1 "Plugin delegation" and "Execution of network
configurations" sections), stdlib-only so any runtime can import it cheaply.

It loads a network configuration list, derives each plugin's configuration (`name`, `cniVersion`,
`runtimeConfig` from capabilities, `prevResult`), execs `<bin_dir>/<type>` with the `CNI_*`
environment and the configuration on stdin, and turns error JSON into typed `cni.errors` exceptions.
ADD runs the chain in order (each plugin gets the previous result), DEL in reverse order.

A runtime that wants to skip the exec for some plugin types (our in-process fast path) passes
`handlers={type: callable}`; the callable gets the very same `PluginRequest` the executable would.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cni.errors import (
    CniError,
    DecodeFailure,
    IncompatibleVersion,
    InvalidConfig,
    InvalidEnvironment,
    IOFailure,
    PluginNotFound,
    error_from_json,
)
from cni.types import SUPPORTED_VERSIONS, Attachment, PluginRequest, version_key

__all__ = [
    "Handler",
    "NetworkConfigList",
    "add",
    "check",
    "delete",
    "find_plugin",
    "gc",
    "list_conf_files",
    "load_conf_dir",
    "load_conflist",
    "parse_conflist",
    "pod_ips",
    "run_plugin",
    "status",
    "version",
]

Handler = Callable[[PluginRequest], "dict[str, Any] | None"]
ArgsLike = Mapping[str, str] | Sequence[tuple[str, str]] | None

CONF_EXTENSIONS = (".conf", ".conflist", ".json")
DEFAULT_TIMEOUT = 60.0
# Spec "Parameters": a container ID starts alphanumeric, then alphanumerics, `_`, `.`, `-`.
_CONTAINER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
# Spec "Network configuration": network names follow the same rule.
_NETWORK_NAME = _CONTAINER_ID


@dataclass(frozen=True)
class NetworkConfigList:
    """A parsed network configuration list (a bare `.conf` becomes a one-plugin list)."""

    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]
    disable_check: bool = False
    disable_gc: bool = False
    source: str = ""


# --- loading configuration -------------------------------------------------------------------------


def _negotiate_version(raw: Mapping[str, Any]) -> str:
    """Spec 1.1: with `cniVersions`, use the highest version both sides support; else `cniVersion`."""
    versions = raw.get("cniVersions")
    if versions is not None:
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise InvalidConfig("cniVersions must be a list of strings", repr(versions))
        common = [v for v in versions if v in SUPPORTED_VERSIONS]
        if not common:
            raise IncompatibleVersion("no common CNI version", f"config offers {versions}")
        return str(max(common, key=version_key))
    version = raw.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise InvalidConfig("cniVersion is required")
    if version not in SUPPORTED_VERSIONS:
        raise IncompatibleVersion(f"unsupported cniVersion {version!r}", f"supported: {list(SUPPORTED_VERSIONS)}")
    return version


def parse_conflist(data: bytes | str | Mapping[str, Any], *, source: str = "") -> NetworkConfigList:
    """Parse a `.conflist` (with `plugins`) or a single-plugin `.conf` document."""
    if isinstance(data, bytes | str):
        try:
            raw = json.loads(data)
        except ValueError as err:
            raise DecodeFailure("network configuration is not valid JSON", f"{source}: {err}") from err
    else:
        raw = data
    if not isinstance(raw, Mapping):
        raise InvalidConfig("network configuration must be a JSON object", source)
    name = raw.get("name")
    if not isinstance(name, str) or not _NETWORK_NAME.match(name):
        raise InvalidConfig("network name missing or invalid", f"{source}: name={name!r}")
    version = _negotiate_version(raw)
    if "plugins" in raw:
        plugins = raw["plugins"]
        if not isinstance(plugins, list) or not plugins:
            raise InvalidConfig("plugins must be a non-empty list", source)
    else:
        plugins = [{k: v for k, v in raw.items() if k not in ("name", "cniVersion", "cniVersions")}]
    for plugin in plugins:
        ptype = plugin.get("type") if isinstance(plugin, Mapping) else None
        if not isinstance(ptype, str) or not ptype or "/" in ptype or ptype in (".", ".."):
            raise InvalidConfig("every plugin needs a plain `type`", f"{source}: {plugin!r}")
    return NetworkConfigList(
        name=name,
        cni_version=version,
        plugins=tuple(dict(p) for p in plugins),
        disable_check=bool(raw.get("disableCheck", False)),
        disable_gc=bool(raw.get("disableGC", False)),
        source=source,
    )


def load_conflist(path: str | os.PathLike[str]) -> NetworkConfigList:
    """Load one configuration file."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise IOFailure("cannot read network configuration", f"{path}: {err}") from err
    return parse_conflist(data, source=os.fspath(path))


def list_conf_files(conf_dir: str | os.PathLike[str]) -> list[str]:
    """Configuration files in lexical order, as runtimes pick them."""
    try:
        names = sorted(os.listdir(conf_dir))
    except FileNotFoundError:
        return []
    return [os.path.join(conf_dir, n) for n in names if n.endswith(CONF_EXTENSIONS)]


def load_conf_dir(conf_dir: str | os.PathLike[str], *, name: str | None = None) -> NetworkConfigList:
    """The first valid configuration in lexical order (or the one whose network is `name`)."""
    problems: list[str] = []
    for path in list_conf_files(conf_dir):
        try:
            conf = load_conflist(path)
        except CniError as err:
            problems.append(f"{path}: {err}")
            continue
        if name is None or conf.name == name:
            return conf
    wanted = f"network {name!r}" if name else "a network configuration"
    raise InvalidConfig(f"no {wanted} in {os.fspath(conf_dir)}", "; ".join(problems))


def _as_conflist(conflist: NetworkConfigList | str | os.PathLike[str]) -> NetworkConfigList:
    return conflist if isinstance(conflist, NetworkConfigList) else load_conflist(conflist)


# --- executing one plugin ---------------------------------------------------------------------------


def find_plugin(plugin_type: str, bin_dirs: Sequence[str]) -> str:
    """The first executable named `plugin_type` in `bin_dirs`."""
    for directory in bin_dirs:
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise PluginNotFound(f"failed to find plugin {plugin_type!r}", f"searched {list(bin_dirs)}")


def _exec_plugin(plugin_type: str, request: PluginRequest, bin_dirs: Sequence[str], timeout: float) -> bytes:
    path = find_plugin(plugin_type, bin_dirs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    env.update(request.environ())
    try:
        proc = subprocess.run([path], input=request.stdin, env=env, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise IOFailure(f"plugin {plugin_type} timed out", f"{request.command} after {timeout}s") from err
    except OSError as err:
        raise IOFailure(f"cannot execute plugin {plugin_type}", str(err)) from err
    if proc.returncode != 0:
        try:
            obj = json.loads(proc.stdout)
        except ValueError:
            raise IOFailure(
                f"plugin {plugin_type} failed with exit status {proc.returncode}",
                (proc.stderr or proc.stdout).decode(errors="replace")[-2000:],
            ) from None
        raise error_from_json(obj)
    return proc.stdout


def run_plugin(
    plugin_type: str,
    request: PluginRequest,
    bin_dirs: Sequence[str],
    *,
    handlers: Mapping[str, Handler] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any] | None:
    """One plugin call: in-process if `handlers` has the type, else exec; None when it printed nothing.

    Also what a main plugin uses to delegate to its IPAM plugin (spec "Delegated plugin protocol").
    """
    handler = handlers.get(plugin_type) if handlers else None
    if handler is not None:
        return handler(request)
    out = _exec_plugin(plugin_type, request, bin_dirs, timeout).strip()
    if not out:
        return None
    try:
        result = json.loads(out)
    except ValueError as err:
        raise DecodeFailure(f"plugin {plugin_type} printed invalid JSON", out[:500].decode(errors="replace")) from err
    if not isinstance(result, dict):
        raise DecodeFailure(f"plugin {plugin_type} printed a non-object result", repr(result)[:500])
    return result


def _plugin_config(
    netconf: NetworkConfigList,
    plugin: Mapping[str, Any],
    *,
    prev_result: Mapping[str, Any] | None,
    capability_args: Mapping[str, Any] | None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """Spec "Deriving execution configuration from plugin configuration"."""
    conf = dict(plugin)
    conf["name"] = netconf.name
    conf["cniVersion"] = netconf.cni_version
    capabilities = plugin.get("capabilities") or {}
    runtime_config = {k: v for k, v in (capability_args or {}).items() if capabilities.get(k)}
    if runtime_config:
        conf["runtimeConfig"] = runtime_config
    if prev_result is not None:
        conf["prevResult"] = prev_result
    if extra:
        conf.update(extra)
    return json.dumps(conf).encode()


def _cni_args(args: ArgsLike) -> str:
    if not args:
        return ""
    pairs = args.items() if isinstance(args, Mapping) else args
    return ";".join(f"{k}={v}" for k, v in pairs)


def _validate_attachment(container_id: str, ifname: str) -> None:
    if not _CONTAINER_ID.match(container_id or ""):
        raise InvalidEnvironment("invalid container id", repr(container_id))
    if not ifname or ifname in (".", "..") or len(ifname) > 15 or any(c in ifname for c in "/: \t\n"):
        raise InvalidEnvironment("invalid interface name", repr(ifname))


# --- result cache (like libcni's, so DEL/CHECK/GC work without the caller keeping results) ---------


def _cache_path(cache_dir: str | os.PathLike[str], network: str, container_id: str, ifname: str) -> Path:
    return Path(cache_dir) / f"{network}-{container_id}-{ifname}"


def _write_cache(
    cache_dir: str | os.PathLike[str],
    netconf: NetworkConfigList,
    *,
    container_id: str,
    ifname: str,
    netns: str,
    result: Mapping[str, Any],
) -> None:
    path = _cache_path(cache_dir, netconf.name, container_id, ifname)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "kind": "cniCacheV1",
        "networkName": netconf.name,
        "containerId": container_id,
        "ifName": ifname,
        "netns": netns,
        "result": result,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def _read_cache(
    cache_dir: str | os.PathLike[str], network: str, container_id: str, ifname: str
) -> dict[str, Any] | None:
    try:
        record = json.loads(_cache_path(cache_dir, network, container_id, ifname).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _cached_records(cache_dir: str | os.PathLike[str], network: str) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    base = Path(cache_dir)
    if not base.is_dir():
        return records
    for path in sorted(base.glob(f"{network}-*")):
        with contextlib.suppress(OSError, ValueError):
            record = json.loads(path.read_text())
            if isinstance(record, dict) and record.get("networkName") == network:
                records.append(record)
    return records


# --- verbs --------------------------------------------------------------------------------------------


def add(
    conflist: NetworkConfigList | str | os.PathLike[str],
    container_id: str,
    netns: str,
    ifname: str,
    bin_dirs: Sequence[str],
    *,
    args: ArgsLike = None,
    capability_args: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    handlers: Mapping[str, Handler] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    cleanup_on_failure: bool = True,
) -> dict[str, Any]:
    """Attach the container to the network: ADD through the chain; returns the final result.

    On failure the chain is DEL'd (best effort) before the error is raised, so nothing leaks even
    if the caller forgets the DEL the spec asks runtimes to send after a failed ADD.
    """
    netconf = _as_conflist(conflist)
    _validate_attachment(container_id, ifname)
    prev: dict[str, Any] | None = None
    try:
        for plugin in netconf.plugins:
            request = PluginRequest(
                command="ADD",
                container_id=container_id,
                netns=netns,
                ifname=ifname,
                args=_cni_args(args),
                path=os.pathsep.join(bin_dirs),
                stdin=_plugin_config(netconf, plugin, prev_result=prev, capability_args=capability_args),
            )
            result = run_plugin(plugin["type"], request, bin_dirs, handlers=handlers, timeout=timeout)
            if result is None:
                raise DecodeFailure(f"plugin {plugin['type']} returned no result for ADD")
            prev = result
    except CniError:
        if cleanup_on_failure:
            with contextlib.suppress(CniError):
                delete(
                    netconf,
                    container_id,
                    netns,
                    ifname,
                    bin_dirs,
                    args=args,
                    capability_args=capability_args,
                    prev_result=prev,
                    handlers=handlers,
                    timeout=timeout,
                )
        raise
    assert prev is not None  # a conflist has at least one plugin
    if cache_dir is not None:
        _write_cache(cache_dir, netconf, container_id=container_id, ifname=ifname, netns=netns, result=prev)
    return prev


def delete(
    conflist: NetworkConfigList | str | os.PathLike[str],
    container_id: str,
    netns: str,
    ifname: str,
    bin_dirs: Sequence[str],
    *,
    prev_result: Mapping[str, Any] | None = None,
    args: ArgsLike = None,
    capability_args: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    handlers: Mapping[str, Handler] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Detach the container: DEL through the chain in reverse order (plugins make DEL idempotent).

    `netns` may be empty when the namespace is already gone (spec: plugins then release what they can).
    """
    netconf = _as_conflist(conflist)
    _validate_attachment(container_id, ifname)
    if prev_result is None and cache_dir is not None:
        record = _read_cache(cache_dir, netconf.name, container_id, ifname)
        prev_result = record.get("result") if record else None
    # prevResult on DEL exists since spec 0.4.0.
    if version_key(netconf.cni_version) < (0, 4, 0):
        prev_result = None
    for plugin in reversed(netconf.plugins):
        request = PluginRequest(
            command="DEL",
            container_id=container_id,
            netns=netns,
            ifname=ifname,
            args=_cni_args(args),
            path=os.pathsep.join(bin_dirs),
            stdin=_plugin_config(netconf, plugin, prev_result=prev_result, capability_args=capability_args),
        )
        run_plugin(plugin["type"], request, bin_dirs, handlers=handlers, timeout=timeout)
    if cache_dir is not None:
        with contextlib.suppress(FileNotFoundError):
            _cache_path(cache_dir, netconf.name, container_id, ifname).unlink()


def check(
    conflist: NetworkConfigList | str | os.PathLike[str],
    container_id: str,
    netns: str,
    ifname: str,
    bin_dirs: Sequence[str],
    *,
    prev_result: Mapping[str, Any] | None = None,
    args: ArgsLike = None,
    capability_args: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    handlers: Mapping[str, Handler] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """CHECK through the chain in order with the ADD result as prevResult; raises on the first failure."""
    netconf = _as_conflist(conflist)
    _validate_attachment(container_id, ifname)
    if version_key(netconf.cni_version) < (0, 4, 0):
        raise IncompatibleVersion("CHECK needs cniVersion 0.4.0 or later", netconf.cni_version)
    if netconf.disable_check:
        return
    if prev_result is None and cache_dir is not None:
        record = _read_cache(cache_dir, netconf.name, container_id, ifname)
        prev_result = record.get("result") if record else None
    if prev_result is None:
        raise InvalidConfig("CHECK needs the result of the previous ADD", f"{netconf.name}/{container_id}/{ifname}")
    for plugin in netconf.plugins:
        request = PluginRequest(
            command="CHECK",
            container_id=container_id,
            netns=netns,
            ifname=ifname,
            args=_cni_args(args),
            path=os.pathsep.join(bin_dirs),
            stdin=_plugin_config(netconf, plugin, prev_result=prev_result, capability_args=capability_args),
        )
        run_plugin(plugin["type"], request, bin_dirs, handlers=handlers, timeout=timeout)


def status(
    conflist: NetworkConfigList | str | os.PathLike[str],
    bin_dirs: Sequence[str],
    *,
    handlers: Mapping[str, Handler] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """STATUS every plugin (spec 1.1; a no-op for older configurations). Raises PluginNotAvailable etc."""
    netconf = _as_conflist(conflist)
    if version_key(netconf.cni_version) < (1, 1, 0):
        return
    for plugin in netconf.plugins:
        request = PluginRequest(
            command="STATUS",
            path=os.pathsep.join(bin_dirs),
            stdin=_plugin_config(netconf, plugin, prev_result=None, capability_args=None),
        )
        run_plugin(plugin["type"], request, bin_dirs, handlers=handlers, timeout=timeout)


def gc(
    conflist: NetworkConfigList | str | os.PathLike[str],
    bin_dirs: Sequence[str],
    valid_attachments: Iterable[Attachment | tuple[str, str]],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    handlers: Mapping[str, Handler] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Release everything not in `valid_attachments`.

    First DEL every cached attachment that is no longer valid (what libcni does), then, for spec 1.1
    configurations without `disableGC`, send GC with `cni.dev/valid-attachments` to every plugin.
    """
    netconf = _as_conflist(conflist)
    valid = [a if isinstance(a, Attachment) else Attachment(*a) for a in valid_attachments]
    valid_keys = {(a.container_id, a.ifname) for a in valid}
    errors: list[CniError] = []
    if cache_dir is not None:
        for record in _cached_records(cache_dir, netconf.name):
            key = (str(record.get("containerId")), str(record.get("ifName")))
            if key in valid_keys:
                continue
            try:
                delete(
                    netconf,
                    key[0],
                    str(record.get("netns") or ""),
                    key[1],
                    bin_dirs,
                    prev_result=record.get("result"),
                    cache_dir=cache_dir,
                    handlers=handlers,
                    timeout=timeout,
                )
            except CniError as err:
                errors.append(err)
    if version_key(netconf.cni_version) >= (1, 1, 0) and not netconf.disable_gc:
        listed = [{"containerID": a.container_id, "ifname": a.ifname} for a in valid]
        for plugin in netconf.plugins:
            request = PluginRequest(
                command="GC",
                path=os.pathsep.join(bin_dirs),
                stdin=_plugin_config(
                    netconf,
                    plugin,
                    prev_result=None,
                    capability_args=None,
                    extra={"cni.dev/valid-attachments": listed},
                ),
            )
            try:
                run_plugin(plugin["type"], request, bin_dirs, handlers=handlers, timeout=timeout)
            except CniError as err:
                errors.append(err)
    if errors:
        raise errors[0]


def version(
    plugin_type: str,
    bin_dirs: Sequence[str],
    *,
    cni_version: str = "1.1.0",
    handlers: Mapping[str, Handler] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """VERSION: the plugin's `supportedVersions` report."""
    request = PluginRequest(
        command="VERSION",
        path=os.pathsep.join(bin_dirs),
        stdin=json.dumps({"cniVersion": cni_version}).encode(),
    )
    result = run_plugin(plugin_type, request, bin_dirs, handlers=handlers, timeout=timeout)
    if result is None:
        raise DecodeFailure(f"plugin {plugin_type} printed nothing for VERSION")
    return result


def pod_ips(result: Mapping[str, Any], ifname: str | None = None) -> list[str]:
    """Addresses (no prefix length) from a result, limited to the sandbox interface `ifname` if given."""
    interfaces = result.get("interfaces") or []
    ips: list[str] = []
    for entry in result.get("ips") or []:
        index = entry.get("interface")
        if ifname is not None and isinstance(index, int) and 0 <= index < len(interfaces):
            iface = interfaces[index]
            if iface.get("name") != ifname or not iface.get("sandbox"):
                continue
        ips.append(str(entry.get("address", "")).split("/")[0])
    return [ip for ip in ips if ip]
