"""The lab's state file: the plan, and every namespace, cgroup and process `up` made, written after each
step so that `down` can undo a lab whose `up` failed half-way or was killed."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinykube.lab.netns_cgroups import LabCgroups
from tinykube.lab.netns_errors import NotRunning
from tinykube.lab.netns_plan import LabPlan, NodePlan
from tinykube.lab.netns_procs import ProcRecord

STATE_FILE = "lab.json"


@dataclass
class LabState:
    plan: LabPlan
    state_dir: str
    cgroups: LabCgroups
    api_port: int = 0
    kubeconfig: str = ""
    netns: list[str] = field(default_factory=list)
    processes: list[ProcRecord] = field(default_factory=list)
    started_at: float = 0.0
    ready_seconds: float | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step of `up`

    def save(self) -> None:
        path = Path(self.state_dir) / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dataclasses.asdict(self), indent=1))
        os.replace(tmp, path)


def exists(state_dir: str | os.PathLike[str]) -> bool:
    return (Path(state_dir) / STATE_FILE).exists()


def _plan(raw: dict[str, Any]) -> LabPlan:
    nodes = tuple(NodePlan(**n) for n in raw.pop("nodes"))
    return LabPlan(nodes=nodes, **raw)


def load(state_dir: str | os.PathLike[str]) -> LabState:
    path = Path(state_dir) / STATE_FILE
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise NotRunning(f"no lab in {state_dir} (no {STATE_FILE})") from err
    raw["plan"] = _plan(raw["plan"])
    raw["cgroups"] = LabCgroups(**raw["cgroups"])
    raw["processes"] = [ProcRecord(**p) for p in raw["processes"]]
    return LabState(**raw)
