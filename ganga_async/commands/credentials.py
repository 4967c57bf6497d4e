"""``ganga-async credentials [renew] [TYPE]``: the credentials of this terminal's environment.

Unlike the other commands it opens no engine and never asks a daemon: it reads the
credentials this machine has for the user (and the configured defaults), and renews them here,
where a renewal command may ask for a password. The daemon's own view is the service's
``credentials`` operation.
"""

from __future__ import annotations

import argparse
import sys

from .._describe import credential_rows
from .._exceptions import GangaAsyncError
from ..config import Config
from ..credentials.store import CredentialStore
from . import render

__all__ = ["credentials"]


async def credentials(args: argparse.Namespace, config: Config) -> int:
    """List the credentials, or renew them (``renew`` as the first word); ``TYPE`` keeps one type."""
    words = list(args.words)
    renew = words[:1] == ["renew"]
    if renew:
        words.pop(0)
    if len(words) > 1:
        raise GangaAsyncError(f"credentials takes at most one TYPE, not {' '.join(words)}; "
                              "e.g. ganga-async credentials renew VomsProxy")
    type_name = words[0] if words else None
    store = CredentialStore(config)
    if renew:
        results = await store.renew(type_name, interactive=sys.stdin.isatty())
        return render.print_renewals(results, store, args)
    return render.print_credentials(await credential_rows(store, type_name), args)
