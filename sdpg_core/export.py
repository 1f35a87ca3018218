"""Portable policy files: ONNX or TorchScript graphs of the deterministic actor with their IO
contract as metadata, for runtimes without this package (or without torch: ``OnnxPolicy``).

The graph maps the actor's inputs (``input_names`` of the spec's observation mode: stacked uint8
frames and / or the proprio group, or the raw privileged state, normalised inside) to the env
action tanh(clamp(mu)) float32 [n, A] in (-1, 1), with a dynamic batch dimension.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sdpg_core.envs.base import EnvSpec
from sdpg_core.obs_tensors import ActorObs
from sdpg_core.onnx_policy import CONFIG_KEY, CONTRACT_KEY, SPEC_KEY
from sdpg_core.policy import Policy
from sdpg_core.stream import proprio_layout

FORMATS = ("onnx", "torchscript")
OPSET = 18


def input_names(spec: EnvSpec) -> tuple[str, ...]:
    """The graph's inputs, in order, for a spec's observation mode."""
    if spec.obs_mode == "pixels":
        return ("pixels", "proprio") if spec.proprio_dim else ("pixels",)
    return ("proprio",) if spec.obs_mode == "proprio" else ("state",)


class DeployGraph(nn.Module):
    """Actor inputs -> tanh(clamp(mu)): the deterministic action of ``Policy.act``."""

    def __init__(self, policy: Policy) -> None:
        super().__init__()
        self.actor, self.normalizer = policy.actor, policy.normalizer
        self.mode, self.bound = policy.spec.obs_mode, policy.cfg.action.mu_bound

    def forward(self, main: torch.Tensor, proprio: torch.Tensor | None = None) -> torch.Tensor:
        """``main``: pixels, the proprio group or raw state; ``proprio`` beside pixels."""
        if self.mode == "state":
            main = self.normalizer(main).float()
        mu, _ = self.actor(ActorObs(main, proprio))
        return torch.tanh(mu.clamp(-self.bound, self.bound))


def example_inputs(spec: EnvSpec, n: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Random inputs [n, ...] of the graph: uint8 frames, standard normal vectors."""
    shapes = {"proprio": (spec.proprio_dim,), "state": (spec.state_dim,)}
    out = []
    for name in input_names(spec):
        if name == "pixels":
            size = (n, *spec.pixel_shape)
            out.append(torch.randint(0, 256, size, dtype=torch.uint8, generator=generator))
        else:
            out.append(torch.randn((n, *shapes[name]), generator=generator))
    return tuple(out)


def io_contract(spec: EnvSpec) -> dict[str, Any]:
    """What a runtime must feed the graph and what its output means (JSON-ready)."""
    inputs = dict(zip(input_names(spec), _input_meanings(spec), strict=True))
    return {
        "task": spec.task,
        "control_rate_hz": 1.0 / spec.control_dt,
        "inputs": inputs,
        "camera": _camera(spec),
        "proprio": proprio_layout(spec) if spec.proprio_dim else None,
        "action": {
            "name": "action",
            "dtype": "float32",
            "shape": ["n", spec.action_dim],
            "joints": list(spec.joint_names),
            "meaning": "tanh(clamp(mu)) in (-1, 1), one per joint in this order; command = "
            "offset + scale * action (mode absolute) or held command + scale * action (delta), "
            "in rad (position) or the effort unit (motors)",
            "mode": spec.action_mode,
            "scale": list(spec.action_scale),
            "offset": list(spec.action_offset),
            "default_pose": list(spec.default_pose),
        },
    }


def _input_meanings(spec: EnvSpec) -> list[dict[str, Any]]:
    """Dtype, shape and meaning of each input of ``input_names``."""
    meanings = []
    for name in input_names(spec):
        if name == "pixels":
            shape, dtype, text = list(spec.pixel_shape), "uint8", "stacked camera frames (camera)"
        elif name == "proprio":
            shape, dtype, text = [spec.proprio_dim], "float32", "the proprio group (proprio)"
        else:
            shape, dtype, text = [spec.state_dim], "float32", "raw privileged state"
        meanings.append({"dtype": dtype, "shape": ["n", *shape], "meaning": text})
    return meanings


def _camera(spec: EnvSpec) -> dict[str, Any] | None:
    """Camera, encoding and frame stack of a pixel policy."""
    if spec.obs_mode != "pixels":
        return None
    channels, height, width = spec.pixel_shape
    depth = spec.image == "depth"
    encoding = (
        "uint8 = round(255 (clip(d, near, far) - near) / (far - near)), d metres along the "
        "optical axis, no return = far"
        if depth
        else "uint8 RGB"
    )
    return {
        "name": spec.camera,
        "image": spec.image,
        "height": height,
        "width": width,
        "frames": channels // spec.image_channels,
        "order": "oldest first, channels per frame: 1 (depth) or 3 (RGB)",
        "preprocess": "centre crop to the aspect ratio, then resize (sdpg_core.obs)",
        "encoding": encoding,
        "depth_range": list(spec.depth_range) if depth else None,
        "every_control_steps": spec.camera_every,
    }


def export(policy: Policy, out: str | Path, fmt: str) -> Path:
    """Write ``policy`` as a portable ``fmt`` file (``FORMATS``) at ``out``."""
    if fmt not in FORMATS:
        raise ValueError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    graph = DeployGraph(policy).eval().cpu()
    inputs = example_inputs(policy.spec, 2, torch.Generator().manual_seed(0))
    meta = {
        SPEC_KEY: json.dumps(policy.spec.to_dict()),
        CONTRACT_KEY: json.dumps(io_contract(policy.spec)),
        CONFIG_KEY: json.dumps(policy.cfg.to_dict()),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        if fmt == "torchscript":
            torch.jit.save(torch.jit.trace(graph, inputs), str(out), _extra_files=meta)
        else:
            _export_onnx(graph, inputs, policy.spec, out, meta)
    return out


def _export_onnx(
    graph: DeployGraph,
    inputs: tuple[torch.Tensor, ...],
    spec: EnvSpec,
    out: Path,
    meta: dict[str, str],
) -> None:
    """torch.export -> ONNX (dynamic batch), metadata attached."""
    import onnx

    names = input_names(spec)
    batch = torch.export.Dim("n", min=1)
    program = torch.onnx.export(
        graph,
        inputs,
        input_names=list(names),
        output_names=["action"],
        dynamic_shapes=tuple({0: batch} for _ in names),
        opset_version=OPSET,
        dynamo=True,
        verbose=False,
    )
    model = program.model_proto
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
