"""The commands about prepared state: ``shareref`` (with ``ls``, ``lookup`` and ``rebuild``)
and ``box``, written once against a :class:`~.session.Session`.

They never contact a backend: without a daemon their engine is opened with
``monitoring=False``. The shareref table names the shared area, which for the daemon and the
command's own engine alike is ``<gangadir>/shared/<user>``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..config import Config
from ..prepared.sharedir import SharedArea
from . import render
from .session import Session

__all__ = ["box", "shareref"]


async def shareref(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``shareref [ls NAME | lookup NAME [--unprepare] | rebuild [--no-unprepare] [--rmdir]]``."""
    if args.action == "ls":
        return render.print_sharedir_tree(await session.call("shareref_ls", name=args.name), args)
    if args.action == "lookup":
        return render.print_sharedir_owners(await session.call(
            "shareref_lookup", name=args.name, unprepare=args.unprepare), args)
    if args.action == "rebuild":
        await session.shareref_rebuild(unprepare=args.unprepare, rmdir=args.rmdir)
    from ..prepared.shareref import ShareDirInfo  # the actor's module: the repository

    rows = [ShareDirInfo(**row) for row in await session.shareref()]
    return render.print_sharedirs(rows, _absolute(SharedArea.for_user(session.gangadir,
                                                                      config.user).root), args)


async def box(session: Session, args: argparse.Namespace, config: Config) -> int:
    """``box``."""
    return render.print_box(await session.box(), _absolute(session.gangadir), args)


def _absolute(path: Path) -> Path:
    return path.absolute()
