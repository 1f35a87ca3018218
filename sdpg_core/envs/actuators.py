"""Actuators the robot tasks add to a URDF loaded with MjSpec."""

from __future__ import annotations

import math

import mujoco


def is_position_servo(model: mujoco.MjModel, i: int) -> bool:
    """Whether actuator ``i`` is a PD position servo (affine bias -kp q - kd qdot)."""
    return (
        model.actuator_biastype[i] == mujoco.mjtBias.mjBIAS_AFFINE
        and model.actuator_biasprm[i, 1] < 0
        and math.isclose(-model.actuator_biasprm[i, 1], model.actuator_gainprm[i, 0])
    )


def add_position_servo(
    spec: mujoco.MjSpec, joint: str, kp: float, force: float, kd: float = 0.0
) -> None:
    """A PD position servo on ``joint``: torque kp (target - q) - kd qdot within +-``force``,
    the target limited to the joint's range (as a real robot's position controller)."""
    spec.add_actuator(
        name=joint,
        target=joint,
        trntype=mujoco.mjtTrn.mjTRN_JOINT,
        ctrlrange=spec.joint(joint).range,
        ctrllimited=True,
        forcerange=[-force, force],
        forcelimited=True,
        gaintype=mujoco.mjtGain.mjGAIN_FIXED,
        gainprm=[kp] + [0] * 9,
        biastype=mujoco.mjtBias.mjBIAS_AFFINE,
        biasprm=[0, -kp, -kd] + [0] * 7,
    )
