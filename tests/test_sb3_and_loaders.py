"""The SB3 VecEnv adapter and the agent loaders (SB3 .zip, TorchScript, ONNX)."""

from __future__ import annotations

import numpy as np
import pytest

sb3 = pytest.importorskip("stable_baselines3")
torch = pytest.importorskip("torch")

from stable_baselines3.common.vec_env import VecCheckNan  # noqa: E402

from visual_robo_bench.adapters.sb3 import make_sb3_env  # noqa: E402
from visual_robo_bench.evaluation import AgentContext, AgentLoadError, evaluate, load_agent  # noqa: E402

SMALL = {"image_size": (36, 36), "max_episode_steps": 20}


def _frames(pixels: np.ndarray) -> list[np.ndarray]:
    return np.split(pixels, 3, axis=-1)  # the 3 stacked RGB frames, oldest first


def test_adapter_semantics():
    from stable_baselines3.common.monitor import Monitor

    env = make_sb3_env("VRB/Walker-v1", 3, **SMALL)
    assert env.seed(5) == [5, 6, 7]
    obs = env.reset()
    assert obs["pixels"].shape == (3, 36, 36, 9)
    saw_truncation = False
    for _ in range(25):
        env.step_async(np.zeros((3, 6), np.float32))
        obs, rew, dones, infos = env.step_wait()
        assert rew.dtype == np.float32 and dones.shape == (3,) and len(infos) == 3
        for i in np.flatnonzero(dones):
            final = infos[i]["terminal_observation"]
            assert set(final) == {"pixels", "proprio"} and "is_success" in infos[i]
            # the returned observation starts the next episode (K copies of its first frame); the final one moved
            first = _frames(obs["pixels"][i])
            assert all(np.array_equal(f, first[0]) for f in first[1:])
            assert not all(np.array_equal(f, _frames(final["pixels"])[0]) for f in _frames(final["pixels"])[1:])
            length = infos[i]["episode"]["l"]
            assert length <= 20 and infos[i]["TimeLimit.truncated"] == (length == 20)
            saw_truncation |= infos[i]["TimeLimit.truncated"]
    assert saw_truncation
    assert env.get_attr("task_id") == ["VRB/Walker-v1"] * 3
    assert env.env_is_wrapped(Monitor) == [True] * 3  # evaluate_policy reads the adapter's episode infos
    assert len(env.env_method("observe")) == 3
    with pytest.raises(NotImplementedError, match="all 3 envs at once"):
        env.env_method("observe", indices=[1])
    with pytest.raises(NotImplementedError, match="all 3 envs at once"):
        env.set_attr("render_mode", None, indices=np.int64(0))
    assert env.get_images() == [None] * 3  # no render mode
    for bad, msg in ((np.zeros((3, 6), np.int64), "dtype"), (np.zeros(18, np.float32), "shape"),
                     (np.zeros((6, 3), np.float32), "shape")):
        env.step_async(bad)
        with pytest.raises(ValueError, match=msg):  # never reshaped or cast on the way
            env.step_wait()
    env.set_options({"foo": 1})
    with pytest.raises(ValueError, match="no reset options"):
        env.reset()
    env.close()


def test_adapter_renders_one_tiled_frame_and_refuses_a_wrapped_env():
    import gymnasium as gym
    from gymnasium.wrappers.vector import TransformReward

    from visual_robo_bench.adapters.sb3 import SB3VecEnv

    env = make_sb3_env("VRB/Walker-v1", 2, render_mode="rgb_array", **SMALL)
    env.reset()
    images = env.get_images()
    assert len(images) == 2 and images[0].ndim == 3
    frame = env.render()
    assert frame.ndim == 3 and frame.shape[2] == 3  # one image (SB3 tiles the envs), e.g. for VecVideoRecorder
    assert env.metadata["render_fps"] == env.venv.metadata["render_fps"] == 100
    env.close()
    native = gym.make_vec("VRB/Walker-v1", num_envs=2, autoreset_mode="DISABLED", **SMALL)
    with pytest.raises(ValueError, match="inside TransformReward"):
        SB3VecEnv(TransformReward(native, lambda r: 2 * r))
    native.close()


def test_ppo_trains_end_to_end_and_zip_loads(tmp_path, monkeypatch):
    monkeypatch.setenv("SB3_LOGDIR", str(tmp_path / "sb3-log"))  # SB3's default logger made a folder in /tmp
    env = VecCheckNan(make_sb3_env("VRB/Walker-v1", 2, **SMALL), raise_exception=True)
    model = sb3.PPO("MultiInputPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.learn(64)
    path = tmp_path / "ppo.zip"
    model.save(path)
    env.close()
    res = evaluate(str(path), "VRB/Walker-v1", episodes=2, num_envs=2, env_kwargs=SMALL, progress=False)
    assert res.error is None and len(res.episodes) == 2
    with pytest.raises(AgentLoadError, match="trained on observation space"):
        load_agent(str(path), AgentContext.for_task("VRB/Hopper-v0", {"image_size": (36, 36)}))


class TinyPolicy(torch.nn.Module):
    def __init__(self, proprio: int, actions: int) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(proprio, actions)

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        px = obs["pixels"].float().mean(dim=(1, 2, 3), keepdim=False)[:, None] / 255.0
        return torch.tanh(self.lin(obs["proprio"]) + px)


def test_torchscript_and_onnx_exports_match(tmp_path):
    pytest.importorskip("onnxruntime")
    ctx = AgentContext.for_task("VRB/Walker-v1", {"image_size": (36, 36)})
    torch.manual_seed(0)
    policy = TinyPolicy(12, 6).eval()
    ts_path = tmp_path / "policy.ts"
    torch.jit.script(policy).save(str(ts_path))
    onnx_path = tmp_path / "policy.onnx"
    example = {"pixels": torch.zeros((2, 36, 36, 9), dtype=torch.uint8), "proprio": torch.zeros((2, 12))}
    # a trailing {} tells the exporter that the dict is the positional argument, not keyword arguments
    torch.onnx.export(policy, (example, {}), str(onnx_path), input_names=["pixels", "proprio"], output_names=["a"],
                      dynamic_axes={"pixels": {0: "n"}, "proprio": {0: "n"}, "a": {0: "n"}}, dynamo=False)
    rng = np.random.default_rng(0)
    obs = {"pixels": rng.integers(0, 255, (3, 36, 36, 9), dtype=np.uint8),
           "proprio": rng.normal(size=(3, 12)).astype(np.float32)}
    with torch.no_grad():
        ref = policy({k: torch.from_numpy(v) for k, v in obs.items()}).numpy()
    for path in (ts_path, onnx_path):
        agent = load_agent(str(path), ctx)
        np.testing.assert_allclose(agent.act(obs), ref, atol=1e-5)
    res = evaluate(str(ts_path), "VRB/Walker-v1", episodes=1, num_envs=1, env_kwargs=SMALL, progress=False)
    assert res.error is None


def test_onnx_for_another_observation_space(tmp_path):
    pytest.importorskip("onnxruntime")

    class Other(torch.nn.Module):
        def forward(self, state: torch.Tensor) -> torch.Tensor:
            return torch.tanh(state)

    path = tmp_path / "other.onnx"
    torch.onnx.export(Other(), (torch.zeros(1, 6),), str(path), input_names=["state"], dynamo=False)
    with pytest.raises(AgentLoadError, match="expects inputs"):
        load_agent(str(path), AgentContext.for_task("VRB/Walker-v1"))
