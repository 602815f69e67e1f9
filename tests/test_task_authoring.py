"""What a third-party task author gets wrong is refused early, with the fix in the message.

Registration (ids, deprecations, task and config classes, policy cameras), config field types (class defaults
and ``gym.make`` overrides alike, also under a ``__post_init__`` that does not call super), hook wiring
(``super().setup``, ``super().state_spec``), ``metric_names``, and third-party ids in the ``vrb`` commands.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np
import pytest
import vrb_helpers
from vrb_helpers import slide_task_module

import visual_robo_bench
from visual_robo_bench import CameraConfig, Evaluation, RenderProfile, Task, TaskConfig, TaskState, register_task
from visual_robo_bench import registry
from visual_robo_bench.core import scene

#: Config hashes of the released ids: results files and leaderboards are keyed on them, so they never change.
RELEASED_HASHES = {
    "VRB/AllegroCube-v0": "f6d8da2833ec4aec",
    "VRB/AlohaInsertion-v0": "d2e9044f19443261",
    "VRB/Ant-v0": "dbf1459a3e3973ea",
    "VRB/Ant-v1": "dbf1459a3e3973ea",
    "VRB/FrankaPick-v0": "0e22beb4d647a178",
    "VRB/G1Hurdle-v0": "950ce743428c9279",
    "VRB/Go2-v0": "37011238d47d3fb8",
    "VRB/Go2Terrain-v0": "70d28a9c6bde53b6",
    "VRB/Hopper-v0": "fdeddadeb863b476",
    "VRB/Hopper-v1": "fdeddadeb863b476",
    "VRB/Humanoid-v0": "6963a9ccbb24b87c",
    "VRB/ShadowCube-v0": "3773d931bbd455a3",
    "VRB/Walker-v0": "c41d7882d80a93c8",
    "VRB/Walker-v1": "c41d7882d80a93c8",
    "VRB/WalkerHurdle-v0": "5d44695b765b0505",
    "VRB/WalkerHurdle-v1": "5d44695b765b0505",
}

XML = """<mujoco><worldbody><body name="b" pos="0 0 0.5"><joint name="s" type="slide" axis="1 0 0"/>
<geom type="box" size=".1 .1 .1"/></body></worldbody><actuator><motor joint="s" ctrlrange="-1 1"/></actuator></mujoco>"""


@dataclass(frozen=True)
class SlideConfig(TaskConfig):
    max_episode_steps: int = 20
    proprio_dim: int = 2
    privileged_dim: int = 2
    cameras: tuple = (CameraConfig("cam", pos=(0, -2, 1), lookat=(0, 0, 0.3)),)
    policy_cameras: tuple = ("cam",)
    render_camera: str = "cam"
    goal: float = 0.5
    bonus: tuple[float, ...] = (1.0, 2.0)
    label: str = "slide"
    shaped: bool = True
    laps: int = 3
    model_dir: str | None = None


class Slide(Task):
    """A box slides to x = 0.5 (a task for these tests; registered only where a test says so)."""

    config_cls = SlideConfig
    metric_names = ("distance",)

    def build_scene(self):
        spec = mujoco.MjSpec.from_string(XML)
        scene.add_floor(spec)
        scene.finish_scene(spec, self.cfg.cameras, self.cfg.render_profile)
        return spec

    def initialize_episode(self, sim, state, ids, rngs):
        sim.qpos[ids, 0] = [r.uniform(-0.1, 0.1) for r in rngs]

    def observe(self, sim, state, ids):
        x = np.stack([sim.qpos[ids, 0], sim.qvel[ids, 0]], 1)
        return {"proprio": x, "privileged": x.copy()}

    def reward_terms(self, sim, state, a, ids):
        return {"dist": -np.abs(sim.qpos[ids, 0] - self.cfg.goal)}

    def evaluate(self, sim, state, ids):
        d = np.abs(sim.qpos[ids, 0] - self.cfg.goal)
        return Evaluation(d < 0.05, np.zeros(len(ids), bool), {"distance": d})


@pytest.fixture
def registry_snapshot():
    """Undo every registration a test makes (VRB's registry and Gymnasium's), so other tests see the usual ones."""
    with vrb_helpers.registry_snapshot("authoring_lab"):
        yield


def _refused(task_id: str, cls, exc, match: str, **kwargs) -> None:
    """``register_task(task_id, **kwargs)(cls)`` raises ``exc`` matching ``match`` and registers nothing."""
    before = (list(registry._TASKS), set(gym.registry))
    with pytest.raises(exc, match=match):
        register_task(task_id, **kwargs)(cls)
    assert (list(registry._TASKS), set(gym.registry)) == before


# ------------------------------------------------------------------ 0. the hashes of released ids
def test_released_task_hashes_are_unchanged():
    """The leaderboards key results on the config hash: no change to config checking may move one."""
    from visual_robo_bench.evaluation.results import task_hash

    for task_id, expected in RELEASED_HASHES.items():
        assert visual_robo_bench.get_task(task_id).config.hash() == expected, task_id
        assert task_hash(task_id) == f"{task_id}:{expected}", task_id  # results files: id and config hash
        cfg = visual_robo_bench.get_task(task_id).config
        rebuilt = type(cfg)(**{f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)})
        assert rebuilt.hash() == expected, task_id


# ------------------------------------------------------------------ 1. config classes
def test_config_class_must_be_a_frozen_dataclass_subclass_of_task_config():
    class NoDataclass(SlideConfig):  # forgot @dataclass: these are not fields, and would vanish silently
        proprio_dim: int = 4
        new_field: float = 3.0

    _refused("Test/NoDataclass-v0", type("T1", (Slide,), {"config_cls": NoDataclass}), TypeError,
             r"NoDataclass is not a dataclass.*\['new_field', 'proprio_dim'\]"
             r".*decorate it with @dataclass\(frozen=True\)")

    @dataclass(frozen=True)
    class Shadowing(SlideConfig):
        proprio_dim = 4  # no annotation: changes no field

    _refused("Test/Shadowing-v0", type("T2", (Slide,), {"config_cls": Shadowing}), TypeError,
             r"sets \['proprio_dim'\] without an annotation.*@dataclass\(frozen=True\)")

    @dataclass(frozen=True)
    class NotTC:
        max_episode_steps: int = 10

    _refused("Test/NotTC-v0", type("T3", (Slide,), {"config_cls": NotTC}), TypeError,
             r"T3.config_cls must be a subclass of TaskConfig .*got 'NotTC'")

    class Undecorated(TaskConfig):  # a decorated class below an undecorated one loses its fields too
        extra: int = 1

    @dataclass(frozen=True)
    class Below(Undecorated):
        pass

    _refused("Test/Below-v0", type("T4", (Slide,), {"config_cls": Below}), TypeError,
             r"Undecorated is not a dataclass.*decorate it")
    _refused("Test/WrongConfig-v0", type("T5", (Slide,), {}), TypeError,
             r"config must be a SlideConfig \(T5.config_cls\), got TaskConfig", config=TaskConfig())


# ------------------------------------------------------------------ 2. config field types
@pytest.mark.parametrize("changes,message", [
    (dict(goal=True), r"goal must be a number \(int or float\), got True"),
    (dict(goal="1.0"), r"goal must be a number \(int or float\), got '1.0'"),
    (dict(goal=None), r"goal must be a number \(int or float\), got None"),
    (dict(goal=np.array([1.0, 2.0])), r"goal must be a number .* \(ndarray\)"),
    (dict(bonus=[1.0, 2.0]), r"bonus must be a tuple of numbers, got \[1.0, 2.0\]"),
    (dict(bonus=(1.0, "2")), r"bonus must be a tuple of numbers"),
    (dict(label=3), r"label must be a str, got 3"),
    (dict(shaped="yes"), r"shaped must be True or False, got 'yes'"),
    (dict(laps=2.0), r"laps must be an int, got 2.0"),
    (dict(model_dir=3), r"model_dir must be a str or None, got 3"),
    (dict(proprio_dim=6.0), r"proprio_dim must be an int >= 0, got 6.0"),
    (dict(proprio_dim="6"), r"proprio_dim must be an int >= 0, got '6'"),
    (dict(privileged_dim=-1), r"privileged_dim must be an int >= 0, got -1"),
    (dict(height_scan_dim=True), r"height_scan_dim must be an int >= 0, got True"),
    (dict(max_episode_steps=5.0), r"max_episode_steps must be an int >= 1, got 5.0"),
    (dict(policy_cameras=["cam"]), r"policy_cameras must be a tuple of strings, got \['cam'\]"),
    (dict(render_camera=None), r"render_camera must be a str, got None"),
    (dict(cameras=("cam",)), r"cameras must be a tuple of CameraConfigs"),
    (dict(render_profile={"shadows": True}), r"render_profile must be a RenderProfile"),
])
def test_config_fields_are_checked_against_their_annotations(changes, message):
    """A value of the wrong type is refused where the config is made (it used to fail later, in user code,
    Gymnasium or the renderer, or not at all)."""
    with pytest.raises(ValueError, match=message):
        SlideConfig().replace(**changes)


def test_nested_configs_are_checked():
    with pytest.raises(ValueError, match=r"render_profile.shadows must be True or False, got 'yes'"):
        RenderProfile(shadows="yes")
    with pytest.raises(ValueError, match=r"render_profile.offsamples must be an int, got 1.5"):
        RenderProfile(offsamples=1.5)
    with pytest.raises(ValueError, match=r"camera 'c': pos must be a tuple of 3 numbers, got \(0, 0, '1'\)"):
        CameraConfig("c", pos=(0, 0, "1"), lookat=(0, 0, 0))


@pytest.mark.parametrize("kwargs,message", [
    (dict(render_profile={"shadows": "yes"}), r"render_profile.shadows must be True or False, got 'yes'"),
    (dict(proprio_dim=-1), r"proprio_dim must be an int >= 0, got -1"),
    (dict(privileged_dim=2.5), r"privileged_dim must be an int >= 0, got 2.5"),
    (dict(timestep="0.01"), r"timestep must be a positive number of seconds, got '0.01'"),
])
def test_gym_make_overrides_get_the_same_checks(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make_vec("VRB/Hopper-v1", num_envs=1, obs_mode="state", **kwargs)


def test_a_task_config_field_override_is_checked_through_gym_make():
    with pytest.raises(ValueError, match=r"w_forward must be a number \(int or float\), got '1.0'"):
        gym.make_vec("VRB/Hopper-v1", num_envs=1, obs_mode="state", w_forward="1.0")
    with pytest.raises(ValueError, match=r"w_forward must be a number \(int or float\), got None"):
        gym.make("VRB/Hopper-v1", obs_mode="state", w_forward=None)


def test_numpy_scalars_become_python_numbers_with_the_same_hash():
    cfg = SlideConfig(max_episode_steps=np.int64(50), frame_stack=np.int32(2), goal=np.float64(0.25),
                      laps=np.int16(4), shaped=np.bool_(False), bonus=(np.float32(1.5), np.int64(2)))
    plain = SlideConfig(max_episode_steps=50, frame_stack=2, goal=0.25, laps=4, shaped=False, bonus=(1.5, 2))
    assert cfg == plain and cfg.hash() == plain.hash()
    assert [type(x) for x in (cfg.max_episode_steps, cfg.goal, cfg.laps, cfg.shaped, *cfg.bonus)] == \
        [int, float, int, bool, float, int]
    # an int for a float field is kept as written: configs written with ints keep their hashes
    assert type(SlideConfig(goal=1).goal) is int and SlideConfig(goal=1).hash() != SlideConfig(goal=1.0).hash()


# ------------------------------------------------------------------ 3. policy cameras
def test_registration_refuses_a_config_without_policy_cameras():
    _refused("Test/NoConfigCls-v0", type("NoCfg", (Slide,), {"config_cls": TaskConfig}), ValueError,
             r"defines no policy camera.*NoCfg.config_cls is the base TaskConfig: set config_cls = YourConfig")
    no_cams = dataclass(frozen=True)(type("NoCams", (SlideConfig,), {"__annotations__": {"policy_cameras": tuple},
                                                                       "policy_cameras": ()}))
    _refused("Test/NoCams-v0", type("T6", (Slide,), {"config_cls": no_cams}), ValueError,
             r"defines no policy camera \(policy_cameras is empty\): give NoCams policy_cameras=")


# ------------------------------------------------------------------ 4. ids, reason, task class
@pytest.mark.parametrize("task_id,message", [
    ("MyLab/Pre-view", "must be versioned and namespaced"),
    ("MyLab/Reach-vfoo", "must be versioned and namespaced"),
    ("MyLab/Reach-v1.0", "must be versioned and namespaced"),
    ("Reach-v0", "must be versioned and namespaced"),
    ("CartPole-v1", "must be versioned and namespaced"),
    ("My Lab/Reach-v0", "must be versioned and namespaced"),
    ("MyLab/Reach-v0/x", "must be versioned and namespaced"),
    ("mypkg:MyLab/Reach-v0", r"must not contain ':'.*Register 'MyLab/Reach-v0' in 'mypkg'"),
])
def test_register_task_refuses_malformed_ids(task_id, message):
    _refused(task_id, type("T7", (Slide,), {}), ValueError, message)


def test_every_registered_id_is_well_formed():
    assert all(registry.TASK_ID_RE.match(t) for t in visual_robo_bench.list_tasks())


def test_register_task_refuses_an_id_another_gymnasium_package_registered(registry_snapshot):
    gym.register(id="OtherLab/Thing-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv")
    _refused("OtherLab/Thing-v0", type("T8", (Slide,), {}), ValueError,
             r"already registered with Gymnasium by another package.*CartPoleEnv")
    assert gym.spec("OtherLab/Thing-v0").entry_point.endswith("CartPoleEnv")


def test_register_task_refuses_a_reason_that_is_not_a_pair_and_non_task_classes():
    for reason in ("old", ("only one",), ("a", "b", "c"), ("a", 2)):
        _refused("VRB/WalkerOld-v0", type("T9", (Slide,), {}), ValueError, r"reason must be a pair of strings",
                 deprecated_by="VRB/Walker-v1", reason=reason)
    _refused("Test/NotTask-v0", type("NotTask", (), {"config_cls": SlideConfig}), TypeError,
             r"decorates a subclass of visual_robo_bench.Task; class NotTask is not one")
    _refused("Test/Function-v0", lambda: None, TypeError, r"decorates a subclass of visual_robo_bench.Task")


REASON = ("the box slid the wrong way", "In the old version the box slid the wrong way")


def test_deprecated_by_must_be_a_newer_current_version(registry_snapshot):
    """deprecated_by sends users to the current version: never the id itself, an older or equal version of the
    same name, or a version that is deprecated itself (the message names the id to pass instead)."""
    register_task("Test/Reach-v1")(type("Reach1", (Slide,), {}))
    _refused("Test/Reach-v2", type("R2", (Slide,), {}), ValueError,
             r"'Test/Reach-v2' cannot be deprecated by 'Test/Reach-v1', which is not a newer version.*register it "
             r"again as 'Test/Reach-v3' and pass deprecated_by='Test/Reach-v3'.*register it without deprecated_by",
             deprecated_by="Test/Reach-v1", reason=REASON)
    _refused("Test/Reach-v01", type("R01", (Slide,), {}), ValueError, r"which is not a newer version",
             deprecated_by="Test/Reach-v1", reason=REASON)  # the same version number
    _refused("Test/Reach-v4", type("R4", (Slide,), {}), ValueError,
             r"'Test/Reach-v4' cannot be deprecated by itself: pass deprecated_by= the registered id that replaces "
             r"it, e\.g\. 'Test/Reach-v5'", deprecated_by="Test/Reach-v4", reason=REASON)
    _refused("Test/Reach-v0", type("R0", (Slide,), {}), ValueError, r"must be the registered id that replaces it",
             deprecated_by=("Test/Reach-v1",), reason=REASON)
    _refused("Test/Reach-v0", type("R0", (Slide,), {}), ValueError, r"'Test/Reach-v9', which is not registered",
             deprecated_by="Test/Reach-v9", reason=REASON)

    register_task("Test/Reach-v0", deprecated_by="Test/Reach-v1", reason=REASON)(type("Reach0", (Slide,), {}))
    assert visual_robo_bench.get_task("Test/Reach-v0").deprecated_by == "Test/Reach-v1"
    # a chain: 'Test/Reach-v0' is deprecated, so an id deprecated by it would send users to another deprecated one
    _refused("Test/OldReach-v0", type("Old", (Slide,), {}), ValueError,
             r"cannot be deprecated by 'Test/Reach-v0', which is deprecated itself \(by 'Test/Reach-v1'\): pass "
             r"deprecated_by='Test/Reach-v1', the current version", deprecated_by="Test/Reach-v0", reason=REASON)
    # a renamed task: another name (or namespace) is replaced by any version of the new one
    register_task("Test/OldReach-v3", deprecated_by="Test/Reach-v1", reason=REASON)(type("Old3", (Slide,), {}))
    register_task("Other/Reach-v7", deprecated_by="Test/Reach-v1", reason=REASON)(type("Moved", (Slide,), {}))
    assert visual_robo_bench.get_task("Test/OldReach-v3").summary.startswith("Deprecated: the box slid the wrong "
                                                                             "way; use Test/Reach-v1.")


def test_released_deprecations_point_at_current_higher_versions():
    """VRB's own deprecated ids satisfy the deprecated_by rules (registering them checked it; this shows it)."""
    deprecated = {t: e.deprecated_by for t in visual_robo_bench.list_tasks()
                  if (e := visual_robo_bench.get_task(t)).deprecated_by}
    assert {f"VRB/{name}-v0": f"VRB/{name}-v1" for name in ("Ant", "Hopper", "Walker", "WalkerHurdle")}.items() \
        <= deprecated.items()
    for old, new in deprecated.items():
        assert visual_robo_bench.get_task(new).deprecated_by is None, old
        (name, version), (new_name, new_version) = (registry.TASK_ID_RE.match(t).groups() for t in (old, new))
        assert name != new_name or int(new_version) > int(version), old


# ------------------------------------------------------------------ 4b. a config __post_init__ without super
@dataclass(frozen=True)
class NoSuperConfig(SlideConfig):
    """A config whose own __post_init__ forgets super().__post_init__() (TaskConfig's checks run anyway)."""

    def __post_init__(self):
        if self.laps == 99:
            raise ValueError("laps: 99 is reserved")


def test_field_checks_run_when_post_init_does_not_call_super(registry_snapshot):
    with pytest.raises(ValueError, match=r"goal must be a number \(int or float\), got '1.0'"):
        NoSuperConfig(goal="1.0")
    with pytest.raises(ValueError, match=r"proprio_dim must be an int >= 0, got 2.0"):
        NoSuperConfig().replace(proprio_dim=2.0)
    with pytest.raises(ValueError, match=r"laps: 99 is reserved"):  # the subclass's own checks still run
        NoSuperConfig(laps=99)
    cfg = NoSuperConfig(goal=np.float64(0.25), laps=np.int64(2))  # and the values are normalized
    assert type(cfg.goal) is float and type(cfg.laps) is int and cfg.hash() == SlideConfig(goal=0.25, laps=2).hash()
    register_task("Test/NoSuper-v0")(type("NoSuper", (Slide,), {"config_cls": NoSuperConfig}))
    with pytest.raises(ValueError, match=r"shaped must be True or False, got 'yes'"):
        gym.make_vec("Test/NoSuper-v0", num_envs=1, obs_mode="state", shaped="yes")
    with pytest.raises(ValueError, match=r"label must be a str, got 3"):
        gym.make("Test/NoSuper-v0", obs_mode="state", label=3)

    @dataclass(frozen=True)
    class BadDefault(NoSuperConfig):  # a wrong class default is refused when the class is registered
        bonus: tuple[float, ...] = (1.0, "2")

    _refused("Test/BadDefault-v0", type("BD", (Slide,), {"config_cls": BadDefault}), ValueError,
             r"bonus must be a tuple of numbers, got \(1.0, '2'\)")


def test_field_checks_cannot_be_bypassed_on_the_registry_paths(registry_snapshot):
    """A __post_init__ replaced after the class was made, or an __init__ of its own, still does not get a
    wrong value past register_task or a gym.make override."""
    @dataclass(frozen=True)
    class Patched(SlideConfig):
        pass

    Patched.__post_init__ = lambda self: None  # not seen by TaskConfig.__init_subclass__
    bad = Patched(goal="far")  # made unchecked ...
    _refused("Test/Patched-v0", type("P", (Slide,), {"config_cls": Patched}), ValueError,
             r"goal must be a number \(int or float\), got 'far'", config=bad)  # ... refused where it is used
    register_task("Test/Patched-v0")(type("P", (Slide,), {"config_cls": Patched}))
    with pytest.raises(ValueError, match=r"laps must be an int, got 2.5"):
        gym.make_vec("Test/Patched-v0", num_envs=1, obs_mode="state", laps=2.5)


def test_post_init_wrapping_keeps_init_vars_and_the_chaining_order():
    calls = []

    @dataclass(frozen=True)
    class WithInitVar(SlideConfig):
        scale: dataclasses.InitVar[float] = 1.0

        def __post_init__(self, scale):
            calls.append((type(self.goal), scale))  # TaskConfig's checks ran first: goal is a Python float
            super().__post_init__()

    WithInitVar(goal=np.float64(0.5), scale=2.0)
    assert calls == [(float, 2.0)]
    assert WithInitVar.__post_init__.__wrapped__.__qualname__.endswith("WithInitVar.__post_init__")


def test_a_valid_registration_still_works(registry_snapshot):
    register_task("Test/Slide.x_1-v12")(type("Slide2", (Slide,), {}))
    env = gym.make_vec("Test/Slide.x_1-v12", num_envs=2, obs_mode="state", goal=np.int64(1))
    assert env.unwrapped.cfg.goal == 1 and type(env.unwrapped.cfg.goal) is int
    env.reset(seed=0)
    env.close()


# ------------------------------------------------------------------ 5. hook wiring
def _compiled(task: Task) -> mujoco.MjModel:
    spec = task.build_scene()
    return spec.compile()


def test_setup_without_super_says_to_call_it():
    class NoSuperSetup(Slide):
        def setup(self, model):
            self.cols = np.arange(2)

    task = NoSuperSetup(SlideConfig())
    task.setup(_compiled(task))
    with pytest.raises(RuntimeError, match=r"NoSuperSetup.setup\(model\) did not run Task.setup: call "
                                           r"super\(\).setup\(model\) first"):
        task.action_dim
    with pytest.raises(RuntimeError, match=r"call super\(\).setup\(model\) first"):
        task.state_spec()


def test_state_spec_without_super_says_to_extend_it():
    class OwnSpec(Slide):
        def state_spec(self):
            return {"goal": ((2,), np.float64)}

    task = OwnSpec(SlideConfig())
    task.setup(_compiled(task))
    state = TaskState(2, task.state_spec())
    with pytest.raises(KeyError, match=r"no task-state field 'prev_action'; state_spec\(\) declares \['goal'\].*"
                                       r"extend super\(\).state_spec\(\)"):
        task.after_step(None, state, np.zeros((2, 1)), np.arange(2))
    with pytest.raises(KeyError, match=r"no task-state field 'gaol'; state_spec\(\) declares \['goal'\]$"):
        state["gaol"]


# ------------------------------------------------------------------ 7. metric names
def test_check_metrics_compares_with_metric_names():
    task = Slide(SlideConfig())
    task.check_metrics({"distance": np.zeros(2)})
    task.check_metrics(("distance",))
    with pytest.raises(ValueError, match=r"Slide.evaluate\(\) returns metrics \['dist_typo'\] that "
                                         r"Slide.metric_names does not declare and does not return the declared "
                                         r"metrics \['distance'\]"):
        task.check_metrics({"dist_typo": np.zeros(2)})
    with pytest.raises(ValueError, match=r"does not return the declared metrics \['distance'\]"):
        task.check_metrics({})
    Task.check_metrics(type("NoMetrics", (Slide,), {"metric_names": ()})(SlideConfig()), {})


def test_float32_terms_sum_to_the_reward_and_state_mode_needs_privileged_state(registry_snapshot):
    """The reward is the sum of the float64 terms in info (float32 terms summed first in float32 differed), and
    obs_mode='state' without privileged state is refused (it declared an empty Box and returned {})."""
    def terms(self, sim, state, a, ids):
        x = sim.qpos[ids, 0].astype(np.float32)
        return {"a": np.float32(0.1) * x, "b": np.float32(1 / 3) + x, "c": x / np.float32(7)}

    @dataclass(frozen=True)
    class ProprioOnly(SlideConfig):
        privileged_dim: int = 0

    register_task("Test/SlideF32-v0")(type("SlideF32", (Slide,), {
        "config_cls": ProprioOnly, "reward_terms": terms,
        "observe": lambda self, sim, state, ids: {"proprio": np.stack([sim.qpos[ids, 0], sim.qvel[ids, 0]], 1)}}))
    env = gym.make_vec("Test/SlideF32-v0", num_envs=4, obs_mode="visual", image_size=(16, 16),
                       render_size=(16, 16))
    env.reset(seed=0)
    for _ in range(5):
        _, reward, _, _, info = env.step(np.full((4, 1), 0.7, np.float32))
        assert np.array_equal(reward, sum(info["reward_terms"].values()))
    env.close()
    with pytest.raises(ValueError, match=r"obs_mode='state' observes the privileged state, which Test/SlideF32-v0 "
                                         r"does not declare \(privileged_dim=0\): use obs_mode='visual'"):
        gym.make_vec("Test/SlideF32-v0", num_envs=1, obs_mode="state")
    with pytest.raises(ValueError, match=r"privileged=True adds the privileged state, which Test/SlideF32-v0 does "
                                         r"not declare \(privileged_dim=0\): use privileged=False"):
        gym.make_vec("Test/SlideF32-v0", num_envs=1, privileged=True)


def test_the_env_checks_metrics_scene_and_overrides_equal_to_defaults(registry_snapshot):
    """In the env: evaluate's metrics must be the declared metric_names (at every step), build_scene must return
    an MjSpec, and an override equal to its default is still checked (True == 1 and 2.0 == 2 slipped through)."""
    register_task("Test/SlideTypo-v0")(type("SlideTypo", (Slide,), {"metric_names": ("dist_typo",)}))
    env = gym.make_vec("Test/SlideTypo-v0", num_envs=2, obs_mode="state")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"SlideTypo.evaluate\(\) returns metrics \['distance'\] that "
                                         r"SlideTypo.metric_names does not declare"):
        env.step(np.zeros((2, 1), np.float32))
    env.close()
    register_task("Test/SlideModel-v0")(type("SlideModel", (Slide,), {"build_scene": lambda self: Slide.build_scene(
        self).compile()}))
    with pytest.raises(TypeError, match=r"SlideModel.build_scene must return the scene's mujoco.MjSpec \(VRB "
                                        r"compiles it\), got MjModel"):
        gym.make_vec("Test/SlideModel-v0", num_envs=1, obs_mode="state")
    register_task("Test/SlideOk-v0")(type("SlideOk", (Slide,), {}))
    with pytest.raises(ValueError, match=r"shaped must be True or False, got 1"):
        gym.make_vec("Test/SlideOk-v0", num_envs=1, obs_mode="state", shaped=1)
    with pytest.raises(ValueError, match=r"proprio_dim must be an int >= 0, got 2.0"):
        gym.make_vec("Test/SlideOk-v0", num_envs=1, obs_mode="state", proprio_dim=2.0)


# ------------------------------------------------------------------ 6. third-party ids in the vrb commands
def test_unknown_third_party_id_says_to_import_its_package(capsys):
    with pytest.raises(KeyError, match=r"import its package first: use 'their_module:MyLab/PointReach-v1'") as err:
        visual_robo_bench.get_task("MyLab/PointReach-v1")
    assert "Did you mean 'VRB/" not in str(err.value)
    from visual_robo_bench.cli import main

    assert main(["render", "MyLab/PointReach-v1", "--out", "x.png"]) == 2
    assert "their_module:MyLab/PointReach-v1" in capsys.readouterr().err.replace("\n", "")
    with pytest.raises(KeyError, match="Did you mean 'VRB/Walker-v0'"):  # VRB ids still get suggestions
        visual_robo_bench.get_task("VRB/Walkr-v0")


LAB_SOURCE = slide_task_module("AuthoringLab/Slide-v0", privileged_dim=0)


def test_vrb_list_and_doctor_take_module(tmp_path, monkeypatch, capsys, registry_snapshot):
    (tmp_path / "authoring_lab.py").write_text(LAB_SOURCE)
    monkeypatch.chdir(tmp_path)  # `--module` imports from the working directory, as `python -m` does
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(sys, "path", list(sys.path))
    from visual_robo_bench import cli

    assert cli.main(["list", "--no-model", "--module", "authoring_lab"]) == 0
    out = capsys.readouterr().out
    assert "AuthoringLab/Slide-v0" in out and "VRB/Walker-v1" in out
    assert cli.main(["list", "--no-model", "--module", "no_such_module_xyz"]) == 2
    assert "cannot import 'no_such_module_xyz'" in capsys.readouterr().err

    # doctor: every task, the package's included (only the third-party task here, to stay cheap)
    monkeypatch.setattr(registry, "list_tasks", lambda: ["AuthoringLab/Slide-v0"])
    code = cli.main(["doctor", "--module", "authoring_lab"])
    out = capsys.readouterr().out
    assert "AuthoringLab/Slide-v0" in out and code == 0, out
