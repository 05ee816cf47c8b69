"""openice: an open Intelligence Credit Engine.

One package per lifecycle stage (servicing, scoring, decisioning, matching, analytics),
a pure domain core with no I/O, storage behind a unit-of-work seam, thin CLI and API layers.
"""

__version__ = "0.1.0"
