"""``visual_robo_bench.checks.check_task`` and ``vrb check``: the task rules, runnable on any registered task.

Every check passes on a VRB task and on a small third-party task (registered by a module, as a package would,
and checked by its ``module:Namespace/Name-vN`` id); each check fails, with a message saying what differed and
where, on a task broken on purpose in the way that check exists to catch.
"""

from __future__ import annotations

import importlib
import sys

import gymnasium as gym
import numpy as np
import pytest
from vrb_helpers import registry_snapshot, slide_task_module

from visual_robo_bench import register_task, registry
from visual_robo_bench.checks import CHECKS, DOC_SECTIONS, check_task, docstring_problems

LAB_SOURCE = slide_task_module("ChecksLab/Slide-v0")


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """The module ``checks_lab`` (registers ``ChecksLab/Slide-v0``); every registration is undone afterwards."""
    (tmp_path / "checks_lab.py").write_text(LAB_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("checks_lab", None)
    with registry_snapshot("checks_lab"):
        yield importlib.import_module("checks_lab")


def _by_name(results):
    assert [r.name for r in results] == list(CHECKS)
    return {r.name: r for r in results}


def _by_name_subset(results):
    return {r.name: r for r in results}


def _failed(results) -> set[str]:
    return {r.name for r in results if not r.passed}


# ------------------------------------------------------------------ every check passes on good tasks
def test_every_check_passes_on_walker():
    results = check_task("VRB/Walker-v1", steps=10)
    assert not _failed(results), [r for r in results if not r.passed]
    assert all(r.message for r in results)


def test_every_check_passes_on_a_third_party_task_by_its_module_id(lab):
    sys.modules.pop("checks_lab", None)  # 'module:' imports it, as gym.make does
    del registry._TASKS["ChecksLab/Slide-v0"], gym.registry["ChecksLab/Slide-v0"]
    results = check_task("checks_lab:ChecksLab/Slide-v0")
    assert not _failed(results), [r for r in results if not r.passed]
    with pytest.raises(KeyError, match="unknown task id 'ChecksLab/Slid-v0'.*Did you mean 'ChecksLab/Slide-v0'"):
        check_task("checks_lab:ChecksLab/Slid-v0")


def test_pixels_and_a_task_without_privileged_state(lab):
    """``obs_mode='visual'`` checks the images too; a task without privileged vectors has no state-mode
    observation, so it is checked with images whatever ``obs_mode`` says."""
    results = check_task("ChecksLab/Slide-v0", steps=5, num_envs=2, obs_mode="visual",
                         checks=["batch_equals_single", "state_round_trip"])
    assert not _failed(results), results

    # 48x48: stable-baselines3 warns about images under 36x36 (its CNN's minimum)
    @register_task("ChecksLab/NoPrivileged-v0", lab.LabConfig(privileged_dim=0, image_size=(48, 48)))
    class NoPrivileged(lab.LabSlide):
        __doc__ = lab.LabSlide.__doc__

        def observe(self, sim, state, ids):
            return {"proprio": super().observe(sim, state, ids)["proprio"]}

    results = check_task("ChecksLab/NoPrivileged-v0", steps=5, num_envs=2)
    assert not _failed(results), [r for r in results if not r.passed]
    assert all("obs_mode 'visual'" in r.message for r in results if r.name in ("determinism", "state_round_trip"))


def test_docstring_problems_is_the_template():
    good = "Summary.\n\n" + "\n\n".join(f"{s} ..." for s in DOC_SECTIONS) + " v2: ..."
    assert docstring_problems("Lab/Task-v2", good) == []
    assert docstring_problems("Lab/Task-v3", good) == ["**Version history.** does not mention v3"]
    assert docstring_problems("Lab/Task-v2", None) == [f"missing sections {list(DOC_SECTIONS)}"]
    swapped = good.replace("**Actions.**", "@@").replace("**Observations.**", "**Actions.**").replace(
        "@@", "**Observations.**")
    assert docstring_problems("Lab/Task-v2", swapped)[0].startswith("sections out of order")


# ------------------------------------------------------------------ each check fails on a task broken for it
def _broken(lab):
    """Tasks broken on purpose: name -> (class, the checks that must fail, a phrase of the first one's message)."""
    base = lab.LabSlide

    class NoTemplate(base):
        """A box slides (no template sections)."""

    class NanObservation(base):  # a unit vector of a velocity that is 0 at reset: 0/0
        __doc__ = base.__doc__

        def observe(self, sim, state, ids):
            obs = super().observe(sim, state, ids)
            v = sim.qvel[ids, 0]
            with np.errstate(invalid="ignore", divide="ignore"):
                obs["privileged"][:, 1] = v / np.abs(v)
            return obs

    class GlobalRandom(base):  # noise from numpy's global generator, not from the env's rngs
        __doc__ = base.__doc__

        def reward_terms(self, sim, state, a, ids):
            return {"dist": super().reward_terms(sim, state, a, ids)["dist"] + np.random.normal(0, 1e-3, len(ids))}

    class BatchNormalised(base):  # a reward normalised over the batch: an env's reward depends on the others
        __doc__ = base.__doc__

        def reward_terms(self, sim, state, a, ids):
            d = super().reward_terms(sim, state, a, ids)["dist"]
            return {"dist": d - d.mean()}

    class HiddenCounter(base):  # per-episode state in a Python attribute, not in state_spec()
        __doc__ = base.__doc__
        ticks = 0

        def after_step(self, sim, state, action, ids):
            super().after_step(sim, state, action, ids)
            self.ticks += 1

        def reward_terms(self, sim, state, a, ids):
            return {"dist": super().reward_terms(sim, state, a, ids)["dist"] - 0.01 * self.ticks}

    class MutatingObserve(base):  # "damping" applied where the velocity is read
        __doc__ = base.__doc__

        def observe(self, sim, state, ids):
            obs = super().observe(sim, state, ids)
            sim.qvel[ids, 0] *= 0.9
            return obs

    return {  # name: (class, every check that fails, {check: a phrase of its message})
        "NoTemplate": (NoTemplate, {"docstring"}, {"docstring": "missing sections ['**Description.**'"}),
        "NanObservation": (NanObservation, {"gymnasium_check_env", "sb3_check_env"},
                           {"gymnasium_check_env": "raised AssertionError: The first element returned by "
                                                   "`env.reset()` is not within the observation space",
                            "sb3_check_env": "key=privileged: The observation returned by the `reset()` method does "
                                             "not match the given observation space"}),
        "GlobalRandom": (GlobalRandom, {"gymnasium_check_env", "determinism", "batch_equals_single",
                                        "state_round_trip", "observe_is_pure"},
                         {"determinism": "differ at step 1: reward, env 0: ",
                          "gymnasium_check_env": "Deterministic step rewards are not equivalent"}),
        "BatchNormalised": (BatchNormalised, {"batch_equals_single"},
                            {"batch_equals_single": "env 0 (seed 0) alone vs in a batch of 3 (seed 0) differ at "
                                                    "step 1: reward: "}),
        "HiddenCounter": (HiddenCounter, {"gymnasium_check_env", "state_round_trip"},
                          {"state_round_trip": "the replayed steps (counted from the saved state) differ at step 1: "
                                               "reward, env 0: "}),
        "MutatingObserve": (MutatingObserve, {"state_round_trip", "observe_is_pure"},
                            {"observe_is_pure": "observe() called twice: observations['proprio'], env 0, index [1]: ",
                             "state_round_trip": "differ at step 1: obs['privileged'], env 0"}),
    }


@pytest.mark.parametrize("name", ["NoTemplate", "NanObservation", "GlobalRandom", "BatchNormalised",
                                  "HiddenCounter", "MutatingObserve"])
def test_each_check_fails_on_a_task_broken_for_it(lab, name):
    cls, expected, phrases = _broken(lab)[name]
    register_task(f"ChecksLab/{name}-v0")(cls)
    results = _by_name(check_task(f"ChecksLab/{name}-v0", steps=10))
    assert _failed(results.values()) == expected, {k: r.message for k, r in results.items() if not r.passed}
    for check, phrase in phrases.items():
        assert phrase in results[check].message, results[check].message


def test_a_check_that_raises_is_recorded_with_where(lab):
    class Raises(lab.LabSlide):
        __doc__ = lab.LabSlide.__doc__

        def evaluate(self, sim, state, ids):
            raise ZeroDivisionError("boom")

    register_task("ChecksLab/Raises-v0")(Raises)
    results = _by_name_subset(check_task("ChecksLab/Raises-v0",
                                         checks=["state_round_trip", "batch_equals_single"]))
    assert list(results) == ["batch_equals_single", "state_round_trip"]  # ordered as CHECKS
    for r in results.values():
        assert not r.passed and "raised ZeroDivisionError: boom (at " in r.message and "in evaluate)" in r.message


# ------------------------------------------------------------------ vrb check
def test_vrb_check(lab, capsys, monkeypatch):
    from visual_robo_bench.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    assert main(["check", "ChecksLab/Slide-v0", "--steps", "3", "--num-envs", "2"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in CHECKS) and "FAIL" not in out and "all 7 checks passed" in out
    register_task("ChecksLab/NoTemplate-v0")(_broken(lab)["NoTemplate"][0])
    assert main(["check", "ChecksLab/NoTemplate-v0", "--steps", "3"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "missing sections" in out and "1 of 7 checks failed" in out
    assert main(["check", "ChecksLab/Slid-v0"]) == 2
    assert "Did you mean 'ChecksLab/Slide-v0'" in capsys.readouterr().err.replace("\n", "")
    assert main(["check", "ChecksLab/Slide-v0", "--steps", "0"]) == 2
