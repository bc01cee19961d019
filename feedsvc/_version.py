"""The one home of feedsvc's version; modules import it from here, never from the package face."""

from __future__ import annotations

__version__ = "0.1.0"
