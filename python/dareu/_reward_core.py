"""`dareu._reward_core`: the compiled reward core, under the name DareU's code and tests use.

The module itself ships in the torch-free distribution `dareu-reward-core`
(`dareu_reward_core._reward_core`, built from rust/reward_core_py); importing this name
puts that very module object in its place in `sys.modules`, so both names are one module
(with the test-only hooks of a development build) and every function has one definition.
"""

import sys

from dareu_reward_core import _reward_core as _core
from dareu_reward_core._reward_core import *  # noqa: F403  (the names, for type checkers)

sys.modules[__name__] = _core
