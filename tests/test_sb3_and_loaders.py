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


def test_adapter_semantics():
    env = make_sb3_env("VRB/Walker-v1", 3, **SMALL)
    env.seed(5)
    obs = env.reset()
    assert obs["pixels"].shape == (3, 36, 36, 9)
    saw_done = False
    for _ in range(25):
        env.step_async(np.zeros((3, 6), np.float32))
        obs, rew, dones, infos = env.step_wait()
        assert rew.dtype == np.float32 and dones.shape == (3,) and len(infos) == 3
        for i in np.flatnonzero(dones):
            saw_done = True
            assert set(infos[i]["terminal_observation"]) == {"pixels", "proprio"}
            assert "TimeLimit.truncated" in infos[i] and "is_success" in infos[i]
            assert infos[i]["episode"]["l"] <= 20
    assert saw_done
    assert env.get_attr("task_id") == ["VRB/Walker-v1"] * 3
    env.close()


def test_ppo_trains_end_to_end_and_zip_loads(tmp_path):
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
