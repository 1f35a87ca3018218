"""An exported ONNX policy run by onnxruntime, without torch: what a robot computer needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sdpg_core.config import Config, ConfigError, from_dict
from sdpg_core.envs.base import EnvSpec
from sdpg_core.stream import StreamingPolicy

SPEC_KEY, CONTRACT_KEY, CONFIG_KEY = "sdpg.spec", "sdpg.contract", "sdpg.config"  # JSON text
SUFFIX = ".onnx"


def is_onnx(path: str | Path) -> bool:
    """Whether ``path`` names an exported ONNX policy (by its suffix)."""
    return Path(path).suffix.lower() == SUFFIX


def open_session(path: str | Path) -> Any:
    """An onnxruntime session on the CPU (ValueError naming the file if it is not ONNX)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()  # no spin-waiting: other processes share the cores
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own exception types
        raise ValueError(f"{path}: not a readable ONNX model ({err})") from err


def read_contract(session: Any, path: str | Path) -> dict[str, Any]:
    """The sdpg metadata of an exported file: {"spec", "contract", "config"} as plain data."""
    meta = session.get_modelmeta().custom_metadata_map
    try:
        keys = {"spec": SPEC_KEY, "contract": CONTRACT_KEY, "config": CONFIG_KEY}
        return {name: json.loads(meta[key]) for name, key in keys.items()}
    except (KeyError, ValueError, TypeError) as err:
        raise ValueError(f"{path}: no sdpg IO contract in its metadata ({err!r})") from err


class OnnxPolicy(StreamingPolicy):
    """``sdpg export --format onnx``'s file: the same streaming inputs as ``Policy``."""

    def __init__(self, session: Any, cfg: Config, spec: EnvSpec, contract: dict[str, Any]) -> None:
        self.session, self.cfg, self.contract = session, cfg, contract
        self.inputs = tuple(i.name for i in session.get_inputs())
        super().__init__(spec)

    @classmethod
    def load(cls, path: str | Path) -> OnnxPolicy:
        """Open an exported file; a one-line ValueError naming it when it is not an ONNX model
        or carries no sdpg IO contract."""
        session = open_session(path)
        meta = read_contract(session, path)
        try:
            from sdpg_core.fit import with_action_mapping  # fit reads .onnx files too

            spec = with_action_mapping(EnvSpec.from_dict(meta["spec"]))
            cfg = from_dict(meta["config"], f"{path}: config")
        except (KeyError, TypeError, ValueError, ConfigError) as err:
            raise ValueError(f"{path}: no valid spec / config in its metadata ({err})") from err
        return cls(session, cfg, spec, meta["contract"])

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Batched deterministic actions float32 [n, A] in (-1, 1)."""
        feed = {
            name: np.ascontiguousarray(obs[name], None if name == "pixels" else np.float32)
            for name in self.inputs
        }
        return self.session.run(["action"], feed)[0]
