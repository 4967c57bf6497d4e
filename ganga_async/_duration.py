"""Durations as users write them: seconds (``90``, ``1.5``) or text (``"1h"``, ``"30m"``, ``"1h30m"``)."""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration", "format_duration"]

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}
_TEXT = re.compile(r"(?:(\d+(?:\.\d+)?)\s*([dhms]))", re.IGNORECASE)


def parse_duration(value: object, where: str) -> float:
    """Seconds from ``value`` (a number of seconds or text like ``"1h30m"``, ``"90s"``, ``"45"``).

    Raises ValueError with a message naming ``where`` and the accepted forms.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            parts = _TEXT.findall(text)
            if not parts or "".join(n + u for n, u in parts).lower() != text.lower():
                raise ValueError(_message(where, value)) from None
            seconds = sum(float(n) * _UNITS[u.lower()] for n, u in parts)
    else:
        raise ValueError(_message(where, value))
    if seconds < 0 or math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"{where}: {value!r} must be zero or more seconds")
    return seconds


def _message(where: str, value: object) -> str:
    return (f"{where}: {value!r} is not a duration; give seconds (3600) or text such as "
            '"1h", "30m", "90s" or "1h30m"')


def format_duration(seconds: float) -> str:
    """Short text for people: ``"45 s"``, ``"2 min"``, ``"1 h"``, ``"1 h 30 min"``, ``"3 d"``."""
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{int(seconds)} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h" if not minutes else f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d" if not hours else f"{days} d {hours} h"
