"""Strict config loading: unknown keys and wrong types name the file and key."""

import dataclasses
import re
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sdpg_core.config import (
    Config,
    ConfigError,
    apply_overrides,
    from_dict,
    load_yaml,
    resolve,
    with_overrides,
)


def test_defaults_round_trip():
    cfg = Config()
    assert from_dict(cfg.to_dict()) == cfg


def test_task_yaml_applied():
    cfg = resolve("reacher")
    assert cfg.env.task == "reacher"
    assert cfg.sdpg.num_nominal == 16  # from config/tasks/reacher.yaml


def test_state_variant_uses_base_yaml():
    assert resolve("reacher_state").sdpg.num_nominal == resolve("reacher").sdpg.num_nominal


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("sdpg:\n  horizn: 16\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: sdpg.horizn: unknown key"):
        load_yaml(path)


def test_wrong_type_names_file_and_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("sdpg:\n  horizon: sixteen\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: sdpg.horizon: expected an integer"):
        load_yaml(path)


def test_bool_is_not_an_int(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("run:\n  seed: true\n")
    with pytest.raises(ConfigError, match=r"run\.seed"):
        load_yaml(path)


def test_section_must_be_mapping(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("sdpg: 3\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_yaml(path)


def test_malformed_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("sdpg: [\n")
    with pytest.raises(ConfigError, match="cannot read config"):
        load_yaml(path)


def test_overrides():
    cfg = apply_overrides(
        Config(), ["sdpg.horizon=16", "model.actor_hidden=[8, 8]", "sdpg.gamma=1"]
    )
    assert cfg.sdpg.horizon == 16
    assert cfg.model.actor_hidden == (8, 8)
    assert cfg.sdpg.gamma == 1.0 and isinstance(cfg.sdpg.gamma, float)


@pytest.mark.parametrize("item", ["sdpg.horizn=3", "sdpg.horizon=x", "sdpg.horizon", "nope.x=1"])
def test_bad_overrides(item):
    with pytest.raises(ConfigError, match="--set"):
        apply_overrides(Config(), [item])


def test_invalid_values():
    with pytest.raises(ConfigError, match=r"sdpg\.returns"):
        resolve("reacher", overrides=["sdpg.returns=gae"])
    with pytest.raises(ConfigError, match=r"sdpg\.top_k"):
        resolve("reacher", overrides=["sdpg.top_k=100"])


def test_exponent_without_dot_is_a_float():
    """YAML 1.1 reads 3e-3 as a string; float fields accept it, int fields do not."""
    assert apply_overrides(Config(), ["sdpg.actor_lr=3e-3"]).sdpg.actor_lr == 3e-3
    with pytest.raises(ConfigError, match="expected an integer"):
        apply_overrides(Config(), ["sdpg.horizon=1e2"])


NONSENSE = [
    "run.checkpoint_interval=0",
    "run.iterations=0",
    "run.minutes=-1",
    "run.eval_episodes=0",
    "run.eval_interval=-5",
    "run.seed=-3",
    "run.stop_success_rate=1.5",
    "sdpg.actor_minibatches=0",
    "sdpg.actor_epochs=0",
    "sdpg.actor_lr=0",
    "sdpg.actor_lr=-1e-3",
    "sdpg.actor_lr=.nan",
    "sdpg.critic_lr=.inf",
    "sdpg.alpha_lr=-.inf",
    "sdpg.critic_minibatch=0",
    "sdpg.critic_epochs=0",
    "sdpg.grad_clip=0",
    "sdpg.target_coef=2",
    "sdpg.reward_scale=0",
    "action.mu_bound=-1",
    "action.log_sigma_min=3",
    "sdpg.fixed_sigma=-0.1",
    "sdpg.sigma_target=0",
    "env.physics_threads=0",
    "env.episode_steps=-1",
    "model.encoder_channels=0",
    "model.encoder_strides=[]",
    "model.encoder_strides=[2, 0]",
    "model.actor_hidden=[16, 0]",
    "ppo.lr=.nan",
    "ppo.grad_clip=-1",
    "distill.grad_clip=0",
]


@pytest.mark.parametrize("item", NONSENSE)
def test_nonsense_values_name_the_key(item):
    key = item.split("=")[0]
    if key == "action.log_sigma_min":
        key = "action.log_sigma_max"  # the pair is checked as min < max
    with pytest.raises(ConfigError, match=f"invalid value for .*{re.escape(key)}"):
        resolve("reacher", overrides=[item])


@settings(max_examples=60, deadline=None)
@given(
    key=st.sampled_from(["sdpg.actor_lr", "sdpg.critic_lr", "ppo.lr", "distill.lr", "sdpg.gamma"]),
    value=st.sampled_from([float("nan"), float("inf"), -float("inf")]) | st.floats(max_value=0),
)
def test_learning_rates_must_be_positive_and_finite(key, value):
    if key == "sdpg.gamma" and 0.0 <= value <= 1.0:
        return  # gamma 0 is valid
    cfg = Config()
    section, name = key.split(".")
    setattr(getattr(cfg, section), name, value)
    with pytest.raises(ConfigError, match=f"invalid value for .*{re.escape(key)}"):
        cfg.validate()


def test_the_resolved_config_is_frozen():
    cfg = resolve("reacher")
    with pytest.raises(dataclasses.FrozenInstanceError, match="frozen"):
        cfg.sdpg.horizon = 3
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.run = Config().run
    derived = with_overrides(cfg, ["sdpg.horizon=3"])
    assert derived.sdpg.horizon == 3 and cfg.sdpg.horizon != 3


def test_the_old_section_name_is_named_in_the_error(tmp_path):
    path = tmp_path / "old.yaml"
    path.write_text("algo:\n  horizon: 16\n")
    with pytest.raises(ConfigError, match=r"old.yaml: algo: unknown key; renamed to 'sdpg'"):
        load_yaml(path)


def test_resolving_a_training_config_needs_no_torch():
    """The launch files check configs and run directories before any node, without torch."""
    code = (
        "import sys; from pathlib import Path; from sdpg_core import session; "
        "cfg = session.resolve_train_config('reacher', overrides=['sdpg.horizon=8']); "
        "session.check_run_dir(Path('no-such-run'), False); session.default_run_dir(cfg); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
