"""The version of ganga-async: its one source, read by the build (``[tool.hatch.version]``), by
``ganga-async --version`` and by the daemon's ``ping``."""

__version__ = "0.1.0"
