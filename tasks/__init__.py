"""Every built-in VRB task, in one place. Importing this package registers them."""

from . import locomotion  # noqa: F401
from . import dexterous  # noqa: F401
from . import legged  # noqa: F401
from . import dexterous_more  # noqa: F401
from . import legged_terrain  # noqa: F401
