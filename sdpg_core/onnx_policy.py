"""An exported ONNX policy run by onnxruntime, without torch: what a robot computer needs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sdpg_core.envs.base import EnvSpec
from sdpg_core.stream import StreamingPolicy

SPEC_KEY, CONTRACT_KEY = "sdpg.spec", "sdpg.contract"  # metadata entries (JSON text)


class OnnxPolicy(StreamingPolicy):
    """``sdpg export --format onnx``'s file: the same streaming inputs as ``Policy``."""

    def __init__(self, session: Any, spec: EnvSpec, contract: dict[str, Any]) -> None:
        self.session, self.contract = session, contract
        self.inputs = tuple(i.name for i in session.get_inputs())
        super().__init__(spec)

    @classmethod
    def load(cls, path: str | Path) -> OnnxPolicy:
        """Open an exported file; a one-line ValueError naming it when it is not an ONNX model
        or carries no sdpg IO contract."""
        import onnxruntime

        try:
            session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types
            raise ValueError(f"{path}: not a readable ONNX model ({err})") from err
        meta = session.get_modelmeta().custom_metadata_map
        try:
            spec = EnvSpec.from_dict(json.loads(meta[SPEC_KEY]))
            contract = json.loads(meta[CONTRACT_KEY])
        except (KeyError, ValueError, TypeError) as err:
            raise ValueError(f"{path}: no sdpg IO contract in its metadata ({err!r})") from err
        return cls(session, spec, contract)

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Batched deterministic actions float32 [n, A] in (-1, 1)."""
        feed = {name: np.ascontiguousarray(obs[name]) for name in self.inputs}
        for name in self.inputs:
            if name != "pixels":
                feed[name] = feed[name].astype(np.float32, copy=False)
        return self.session.run(["action"], feed)[0]
