"""Shell completion for ``ganga-async``: the scripts for bash and zsh, and the candidates they
ask for.

A script calls ``ganga-async __complete WORD...`` with the words typed so far (the last one
being completed) and offers what it prints, one candidate a line; exit code 3 asks the shell to
complete file names instead (for ``FILE.toml``, ``--gangadir``). :func:`complete` finds them
in the parser itself, so a new command or option is completed without editing the scripts:
the command names, each parser's options and the choices of an option or positional, and for
an ``ID`` the ids of the jobs in the gangadir (read without contacting a backend, nor starting
a daemon).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import anyio

from ..config import load_config
from ..service import AsyncGangaService
from . import render

__all__ = ["FILES", "SCRIPTS", "complete", "completion_script", "job_ids"]


class _Completable(Protocol):
    """What :func:`complete` reads of a parser (:class:`ganga_async.cli.Parser`)."""

    options: list[argparse.Action]
    commands: argparse.Action | None


SCRIPTS = {
    "bash": """\
# ganga-async completion for bash: eval "$(ganga-async completion bash)" in ~/.bashrc
_ganga_async_complete() {
    local IFS=$'\\n'
    COMPREPLY=($(ganga-async __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
    if [ $? -eq 3 ]; then
        COMPREPLY=($(compgen -f -- "${COMP_WORDS[COMP_CWORD]}"))
    fi
}
complete -o filenames -F _ganga_async_complete ganga-async
""",
    "zsh": """\
#compdef ganga-async
# ganga-async completion for zsh: eval "$(ganga-async completion zsh)" in ~/.zshrc
_ganga_async() {
    local -a candidates
    local output
    output="$(ganga-async __complete "${(@)words[2,CURRENT]}" 2>/dev/null)"
    if [[ $? -eq 3 ]]; then
        _files
    else
        candidates=("${(@f)output}")
        candidates=(${candidates:#})
        compadd -a candidates
    fi
}
if (( $+functions[compdef] )); then
    compdef _ganga_async ganga-async
fi
""",
}
"""The completion script of each shell."""


def completion_script(shell: str) -> str:
    """The completion script for ``shell`` (``bash`` or ``zsh``)."""
    return SCRIPTS[shell]


def complete(parser: _Completable, words: Sequence[str]) -> int:
    """Print the candidates for the last of ``words`` (the words after ``ganga-async``, the
    last one being typed); the exit code: 0, or 3 when file names are wanted instead."""
    typed = list(words) or [""]
    current, before = typed[-1], typed[:-1]
    active, positionals, gangadir = _walk(parser, before)
    wanted = _candidates(active, positionals, before, current, gangadir)
    if wanted is None:
        return FILES
    render.print_candidates(sorted(c for c in wanted if c.startswith(current)))
    return 0


FILES = 3
"""The exit code of ``__complete`` that asks for file names."""


def _walk(parser: _Completable, words: Sequence[str]) -> tuple[_Completable, int, Path | None]:
    """The parser the words lead to, how many positionals they gave it, and the gangadir named."""
    active, positionals, gangadir = parser, 0, None
    skip = False
    for i, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word.startswith("-"):
            action = _option(active, word)
            skip = action is not None and action.nargs != 0 and "=" not in word
            if word == "--gangadir" and i + 1 < len(words):
                gangadir = Path(words[i + 1])
            continue
        choices: dict[str, Any] = getattr(active.commands, "choices", None) or {}
        if positionals == 0 and word in choices:
            active, positionals = choices[word], 0
            continue
        positionals += 1
    return active, positionals, gangadir


def _option(parser: _Completable, word: str) -> argparse.Action | None:
    name = word.partition("=")[0]
    return next((a for a in parser.options if name in a.option_strings), None)


def _candidates(active: _Completable, positionals: int, before: Sequence[str], current: str,
                gangadir: Path | None) -> list[str] | None:
    """The candidates, or None for file names."""
    previous = _option(active, before[-1]) if before and before[-1].startswith("-") else None
    if previous is not None and previous.nargs != 0:
        return None if previous.type is Path else [str(c) for c in previous.choices or ()]
    if current.startswith("-"):
        return [o for a in active.options if a.help != argparse.SUPPRESS for o in a.option_strings]
    commands: dict[str, Any] = getattr(active.commands, "choices", None) or {}
    if commands and positionals == 0:
        return [name for name in commands if not name.startswith("_")]
    arguments = [a for a in active.options if not a.option_strings]
    if arguments and arguments[-1].nargs in ("+", "*") and positionals >= len(arguments):
        positionals = len(arguments) - 1  # ID...: every further word is one more
    if positionals >= len(arguments):
        return []
    argument = arguments[positionals]
    if argument.type is Path:
        return None
    if argument.choices:
        return [str(c) for c in argument.choices]
    if argument.metavar == "ID":
        return job_ids(gangadir)
    return []


def job_ids(gangadir: Path | None) -> list[str]:
    """The ids of the jobs in ``gangadir`` (default: the configured one), from its daemon when
    one runs, otherwise from the repository; none when it cannot be read."""
    try:
        return anyio.run(_job_ids, gangadir, backend="asyncio")
    except Exception:
        return []


async def _job_ids(gangadir: Path | None) -> list[str]:
    config = load_config()
    where = (gangadir or config.gangadir).expanduser()
    if not where.is_dir():
        return []
    service = await AsyncGangaService.running(where)
    if service is not None:
        async with service:
            rows = await service.jobs()
    else:
        from ..engine import Engine  # not for completions the daemon answers

        async with Engine(where, config=config, monitoring=False) as engine:
            rows = await engine.summary()
    return [str(row["id"]) for row in rows]
