"""The package's __all__ is exactly what it exports (httpx's check)."""

import ganga_async


def test_all_matches_the_public_names_exported() -> None:
    exported = {
        name for name, value in vars(ganga_async).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("ganga_async")
    }
    assert exported == set(ganga_async.__all__) - {"__version__"}
