"""The package's __all__ is exactly what it exports (httpx's check)."""

import ganga_async


def test_all_matches_the_public_names_exported() -> None:
    # dir() and getattr(), not vars(): some plugins are imported when first named (PEP 562).
    exported = {
        name for name in dir(ganga_async)
        if not name.startswith("_")
        and getattr(getattr(ganga_async, name), "__module__", "").startswith("ganga_async")
    }
    assert exported == set(ganga_async.__all__) - {"__version__"}
