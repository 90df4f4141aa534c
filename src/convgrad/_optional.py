"""Optional dependencies, imported only where they are needed, with a clear message.

    sklearn = require("sklearn", "demo", "convgrad demo")

raises, when scikit-learn is missing, an ImportError such as:
"convgrad demo needs scikit-learn, which is not installed: pip install 'convgrad[demo]'".
"""
from __future__ import annotations

import importlib

__all__ = ["require", "MissingExtra"]

# import name -> (distribution name to install, the extra that brings it)
_PACKAGES = {
    "sklearn": "scikit-learn",
    "PIL": "pillow",
    "matplotlib": "matplotlib",
    "sympy": "sympy",
    "tqdm": "tqdm",
    "torch": "torch",
    "nbclient": "nbclient",
    "nbformat": "nbformat",
    "dask": "dask[array]",
    "distributed": "distributed",
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def require(module: str, extra: str, feature: str):
    """Import ``module`` (e.g. 'matplotlib.pyplot') or raise :class:`MissingExtra`."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        top = module.split(".")[0]
        package = _PACKAGES.get(top, top)
        raise MissingExtra(
            f"{feature} needs {package}, which is not installed: "
            f"pip install 'convgrad[{extra}]' (or pip install {package})") from error
