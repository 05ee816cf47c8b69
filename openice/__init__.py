"""openice: an open Intelligence Credit Engine.

One package per lifecycle stage (servicing, scoring, decisioning, matching, analytics),
a pure domain core with no I/O, storage behind a unit-of-work seam, thin CLI and API layers.
"""

from importlib.metadata import version

__version__ = version("openice")  # pyproject.toml's [project] version is the one place it is written
