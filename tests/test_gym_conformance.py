"""What a Gymnasium user expects of VRB's envs beyond ``check_env``: its vector wrappers work on the native vector
env, ``gym.make`` keywords reach the task config, and inputs that Gymnasium's spaces accept are accepted (those it
would misread are refused with the fix in the message)."""

from __future__ import annotations

import dataclasses
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from vrb_helpers import registry_snapshot

from visual_robo_bench import CameraConfig, Evaluation, Task, TaskConfig, register_task
from visual_robo_bench.core import scene
from visual_robo_bench.core.task import TaskState, TaskStateKeyError

SMALL = {"image_size": (16, 16), "render_size": (24, 32)}


def test_render_gives_one_frame_per_env_and_gymnasium_record_video_works(tmp_path):
    pytest.importorskip("moviepy")
    from gymnasium.wrappers.vector import RecordVideo

    env = gym.make_vec("VRB/Hopper-v1", num_envs=3, render_env_ids=[1], render_mode="rgb_array", **SMALL)
    env.reset(seed=0)
    frames = env.render()
    # Gymnasium's contract: a sequence of num_envs frames, whatever render_env_ids (the policy images) says
    assert type(frames) is tuple and len(frames) == 3
    assert all(f.shape == (24, 32, 3) and f.dtype == np.uint8 and f.std() > 1 for f in frames)
    subset = env.unwrapped.render_envs([2, 0])
    np.testing.assert_array_equal(subset, np.stack([frames[2], frames[0]]))
    env.close()

    env = gym.make_vec("VRB/Hopper-v1", num_envs=2, obs_mode="state", render_mode="rgb_array", **SMALL)
    rec = RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda e: e == 0, video_length=5, fps=10)
    rec.reset(seed=0)
    for _ in range(6):
        rec.step(np.zeros(env.action_space.shape, np.float32))
    rec.close()
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 0


def test_single_env_render_is_its_own_frame():
    env = gym.make("VRB/Hopper-v1", obs_mode="state", render_mode="rgb_array", **SMALL)
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (24, 32, 3)
    np.testing.assert_array_equal(frame, env.unwrapped.vector_env.render()[0])
    env.close()


def test_policy_cameras_given_to_gym_make_are_used():
    """gym.make passes the registered ``cameras`` keyword with every call: ``policy_cameras`` must still win."""
    for make in (lambda **kw: gym.make_vec("VRB/FrankaPick-v0", num_envs=1, **kw),
                 lambda **kw: gym.make("VRB/FrankaPick-v0", **kw)):
        env = make(policy_cameras=("front",), image_size=(16, 16))
        vec = getattr(env.unwrapped, "vector_env", env.unwrapped)  # the single env wraps a batch of one
        assert vec.cfg.policy_cameras == ("front",)
        obs, _ = env.reset(seed=0)
        assert {k for k in obs if k.startswith("pixels")} == {"pixels"}
        env.close()
    env = gym.make_vec("VRB/FrankaPick-v0", num_envs=1, cameras=("front",), image_size=(16, 16))
    assert env.unwrapped.cfg.policy_cameras == ("front",)
    env.close()
    with pytest.raises(ValueError, match="pass one of them"):
        gym.make_vec("VRB/FrankaPick-v0", num_envs=1, cameras=("wrist",), policy_cameras=("front",))


def test_actions_of_dtypes_the_action_space_accepts_are_taken():
    env = gym.make_vec("VRB/Hopper-v1", num_envs=2, obs_mode="state")
    single = gym.make("VRB/Hopper-v1", obs_mode="state")
    A = env.single_action_space.shape[0]
    for dtype in (np.float16, np.int8, np.uint8):
        a = np.zeros((2, A), dtype)
        assert env.action_space.contains(a) and single.action_space.contains(a[0])
        env.reset(seed=0)
        single.reset(seed=0)
        ref = env.step(np.zeros((2, A), np.float32))[0]["privileged"]
        env.reset(seed=0)
        np.testing.assert_array_equal(env.step(a)[0]["privileged"], ref)
        single.step(a[0])
    for dtype in (np.int64, np.bool_, np.complex64):  # the space refuses them too, or would misread them
        with pytest.raises(ValueError, match="dtype"):
            env.step(np.zeros((2, A), dtype))
        with pytest.raises(ValueError, match="real array"):
            single.step(np.zeros(A, dtype))
    env.close()
    single.close()


def test_vector_only_keywords_are_refused_by_the_single_env_with_the_fix():
    with pytest.raises(TypeError, match=r"'truncation' is a keyword of VRB's native vector env.*max_episode_steps"):
        gym.make("VRB/Hopper-v1", truncation=False)


def test_render_env_ids_is_refused_where_nothing_is_rendered_for_the_policy():
    with pytest.raises(ValueError, match="obs_mode='state' renders none: leave render_env_ids unset"):
        gym.make_vec("VRB/Hopper-v1", num_envs=2, obs_mode="state", render_env_ids=[1])
    gym.make_vec("VRB/Hopper-v1", num_envs=2, obs_mode="state", render_env_ids=[]).close()


def test_state_take_accepts_a_bool_mask_and_refuses_what_it_would_misread():
    env = gym.make_vec("VRB/Hopper-v1", num_envs=3, obs_mode="state").unwrapped
    env.reset(seed=0)
    st = env.get_state(rng=True)
    picked = st.take(np.array([False, False, True]))
    direct = st.take([2])
    assert len(picked) == 1 and picked.rng == direct.rng == [st.rng[2]]
    np.testing.assert_array_equal(picked.physics, direct.physics)
    for bad, match in ((np.array([True, False]), "one entry per row"), (np.array([0.0, 1.0]), "integer"),
                       (np.array([[0]]), "1-D"), ([3], r"\[0, 3\)"), ([-1], r"\[0, 3\)")):
        with pytest.raises(ValueError, match=match):
            st.take(bad)
    env.close()


def test_frame_stacks_of_another_dtype_are_refused():
    env = gym.make_vec("VRB/Hopper-v1", num_envs=2, **SMALL).unwrapped
    env.reset(seed=0)
    stacks = env.get_frame_stacks()
    with pytest.raises(ValueError, match="must be uint8"):
        env.set_frame_stacks([s.astype(np.float32) + 300 for s in stacks])
    np.testing.assert_array_equal(env.get_frame_stacks()[0], stacks[0])  # untouched
    env.set_frame_stacks(stacks)
    env.close()


def test_task_state_write_to_an_undeclared_field_names_the_declared_ones():
    state = TaskState(2, {"goal": ((2,), np.float64)})
    with pytest.raises(TaskStateKeyError, match=r"no task-state field 'gaol'; state_spec\(\) declares \['goal'\]"):
        state["gaol"] = np.zeros((2, 2))


XML = """<mujoco><worldbody><body name="b" pos="0 0 0.5"><joint name="s" type="slide" axis="1 0 0"/>
<geom type="box" size=".1 .1 .1"/></body></worldbody><actuator><motor name="push" joint="s" {limits}/></actuator>
</mujoco>"""


@dataclasses.dataclass(frozen=True)
class _RailConfig(TaskConfig):
    max_episode_steps: int = 10
    proprio_dim: int = 1
    cameras: tuple = (CameraConfig("cam", pos=(0, -2, 1), lookat=(0, 0, 0.3)),)
    policy_cameras: tuple = ("cam",)
    render_camera: str = "cam"
    limits: str = ""


class _Rail(Task):
    """A box on a rail (for these tests)."""

    config_cls = _RailConfig

    def build_scene(self):
        spec = mujoco.MjSpec.from_string(XML.format(limits=self.cfg.limits))
        scene.finish_scene(spec, self.cfg.cameras, self.cfg.render_profile)
        return spec

    def initialize_episode(self, sim, state, ids, rngs):
        pass

    def observe(self, sim, state, ids):
        return {"proprio": sim.qpos[ids, :1].copy()}

    def reward_terms(self, sim, state, a, ids):
        return {"zero": np.zeros(len(ids))}

    def evaluate(self, sim, state, ids):
        return Evaluation(np.zeros(len(ids), bool), np.zeros(len(ids), bool))


@pytest.fixture
def scratch_registry():
    with registry_snapshot():
        yield


def test_default_apply_action_refuses_actuators_without_a_control_range(scratch_registry):
    register_task("Conf/Rail-v0")(_Rail)
    with pytest.raises(ValueError, match=r"actuators \['push'\] have no control range.*override apply_action"):
        gym.make_vec("Conf/Rail-v0", num_envs=1, obs_mode="visual", image_size=(8, 8))
    env = gym.make_vec("Conf/Rail-v0", num_envs=2, limits='ctrlrange="-2 2"', image_size=(8, 8))
    env.reset(seed=0)
    env.step(np.array([[1.0], [-0.5]], np.float32))
    np.testing.assert_array_equal(env.unwrapped.sim.ctrl[:, 0], [2.0, -1.0])
    env.close()
    own = type("OwnAction", (_Rail,), {"apply_action": lambda self, sim, state, a, ids: None})
    register_task("Conf/OwnRail-v0")(own)  # a task that maps actions itself may use unlimited actuators
    gym.make_vec("Conf/OwnRail-v0", num_envs=1, image_size=(8, 8)).close()


def test_a_renamed_deprecated_task_warns_when_made(scratch_registry):
    register_task("Conf/NewRail-v0", _RailConfig(limits='ctrlrange="-1 1"'))(_Rail)
    old = type("OldRail", (_Rail,), {})
    register_task("Conf/OldRail-v0", _RailConfig(limits='ctrlrange="-1 1"'), deprecated_by="Conf/NewRail-v0",
                  reason=("renamed", "Rail is NewRail now"))(old)
    for make in (lambda: gym.make("Conf/OldRail-v0", image_size=(8, 8)),
                 lambda: gym.make_vec("Conf/OldRail-v0", num_envs=1, image_size=(8, 8))):
        with pytest.warns(DeprecationWarning, match="Conf/OldRail-v0 is deprecated.*use Conf/NewRail-v0"):
            make().close()
    with warnings.catch_warnings():  # the current id: no warning
        warnings.simplefilter("error", DeprecationWarning)
        gym.make_vec("Conf/NewRail-v0", num_envs=1, image_size=(8, 8)).close()
