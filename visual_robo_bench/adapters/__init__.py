"""Thin adapters from VRB's native vector env to other libraries' interfaces."""
