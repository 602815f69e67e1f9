"""Gymnasium environments: the native batched vector env and the single env (a batch of one)."""

from .single_env import VRBEnv
from .vector_env import VRBState, VRBVectorEnv

__all__ = ["VRBEnv", "VRBState", "VRBVectorEnv"]
