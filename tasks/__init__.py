"""Every built-in VRB task, in one place. Importing this package registers them."""

from . import locomotion  # noqa: F401
