"""Imports torchvision even when its wheel was built against another torch (e.g. a CUDA build next to torch+cpu):
such a wheel fails while registering its C++ operators, which the dev scripts' model definitions never use.
Import this module before torchvision or transformers."""

import sys
import types

try:
    import torchvision  # noqa: F401
except RuntimeError:
    for name in [k for k in sys.modules if k.startswith('torchvision')]:
        del sys.modules[name]
    sys.modules['torchvision._meta_registrations'] = types.ModuleType('torchvision._meta_registrations')
    import torchvision  # noqa: F401
