"""``ships``: the command line of the ShipsNet competition harness, the composition root.

It parses, calls the libraries (``competition``, ``baselines``, ``leaderboard``) and formats;
no rule of the competition lives here.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ships")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
