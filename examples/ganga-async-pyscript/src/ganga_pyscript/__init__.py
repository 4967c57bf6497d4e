"""ganga-async plugins: the PythonScript application and the LineSplitter."""

from .application import PythonScript
from .splitter import LineSplitter

__all__ = ["LineSplitter", "PythonScript"]
