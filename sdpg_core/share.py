"""Where the package's data files live: the source tree, else the installed share directory.

One lookup for every data file (task and robot YAML under ``config/``, URDF under ``urdf/``),
whether sdpg runs from a checkout or from an installed package (colcon or pip)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE = "sdpg_ros"
SOURCE_ROOT = Path(__file__).resolve().parents[1]
KINDS = ("config", "urdf")


def share_dirs(kind: str) -> list[Path]:
    """Directories searched for files of ``kind``: for ``config`` first $SDPG_CONFIG_DIR, then
    the source tree, then ``<prefix>/share/sdpg_ros/<kind>`` for each ament prefix (a sourced
    colcon install, $AMENT_PREFIX_PATH) and for the Python prefix (pip)."""
    if kind not in KINDS:
        raise ValueError(f"unknown share kind {kind!r} (one of {', '.join(KINDS)})")
    dirs = []
    if kind == "config" and os.environ.get("SDPG_CONFIG_DIR"):
        dirs.append(Path(os.environ["SDPG_CONFIG_DIR"]))
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    installed = [Path(p) / "share" / PACKAGE / kind for p in [*prefixes, sys.prefix]]
    return [*dirs, SOURCE_ROOT / kind, *installed]


def find_share_file(kind: str, relative: str | Path) -> Path | None:
    """The first ``<dir>/<relative>`` that exists among ``share_dirs(kind)``, else None."""
    for base in share_dirs(kind):
        if (base / relative).is_file():
            return base / relative
    return None


def urdf_file(name: str) -> Path:
    """The URDF ``name`` (e.g. ``ur5e.urdf``) a task's model and the ROS side both load."""
    found = find_share_file("urdf", name)
    if found is None:
        raise FileNotFoundError(f"{name} not found in {share_dirs('urdf')}")
    return found
