"""Put on PYTHONPATH to run Python as if rpy2 were not installed (here and in every child process)."""

import sys


class _NoRpy2:
    """A meta path finder that refuses rpy2 and its submodules, as a missing package would."""

    def find_spec(self, name, path=None, target=None):
        if name == "rpy2" or name.startswith("rpy2."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoRpy2())
