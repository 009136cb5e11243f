"""The click parameter types of regcli's options (imported by :mod:`regcli.cli.options`,
which re-exports them): finite numbers, finite ranges, registry choices, bin counts.

Only click and the standard library are imported here; a registry is read when a value is
checked or help is shown.
"""

from __future__ import annotations

import importlib
import math
import os
from pathlib import Path

import click

__all__ = [
    "FINITE_FLOAT",
    "POSITIVE_FLOAT",
    "BinsPair",
    "FiniteFloat",
    "FiniteFloatRange",
    "PathValue",
    "RegistryChoice",
]


class PathValue(click.Path):
    """A path option or argument, as a :class:`pathlib.Path`, that refuses an empty value:
    pathlib reads ``""`` as ``"."``, so ``-o ""`` wrote into the current folder and an empty
    image argument was reported as ``.: is a directory``.

    ``names_file=True`` (an output that is a file, not a folder) also refuses a trailing
    ``/``: it names a folder, which pathlib drops, so ``-o sub.png/`` wrote a file
    ``sub.png``.  ``noun`` says what to give instead ("file name", "folder name").
    """

    def __init__(self, *, names_file: bool = False, noun: str = "file name", **kwargs):
        super().__init__(path_type=Path, **kwargs)
        self.names_file = names_file
        self.noun = noun

    def convert(self, value, param, ctx):
        if isinstance(value, (str, bytes)):
            text = os.fsdecode(value)
            if text == "":
                self.fail(f"the path is empty; give a {self.noun}", param, ctx)
            if self.names_file and text.endswith(("/", os.sep)):
                self.fail(
                    f"{text!r} ends in '/', which names a folder; give a file name "
                    f"({text.rstrip('/' + os.sep) or 'out'}, or {text}NAME for a file in "
                    "that folder)",
                    param,
                    ctx,
                )
        return super().convert(value, param, ctx)


class FiniteFloat(click.ParamType):
    """A finite float: click's FLOAT accepts 'nan' and 'inf', which no option of regcli can
    use."""

    name = "number"

    def convert(self, value, param, ctx):
        if isinstance(value, float) and math.isfinite(value):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"expected a number, got {value!r}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a finite number, got {value!r}", param, ctx)
        return number


#: Shared instance of :class:`FiniteFloat` for ``type=``.
FINITE_FLOAT = FiniteFloat()


class FiniteFloatRange(click.FloatRange):
    """A finite float within a range (click's FloatRange lets NaN through every bound).

    The message quotes the text as typed: ``--lr 1e-400`` is reported as ``'1e-400'``, not as
    the 0.0 it rounds to.
    """

    name = "number"

    def convert(self, value, param, ctx):
        number = FINITE_FLOAT.convert(value, param, ctx)
        try:
            return super().convert(number, param, ctx)
        except click.BadParameter:
            self.fail(f"expected a number {self._describe_range()}, got {value!r}", param, ctx)

    def _describe_range(self) -> str:
        """click's ``0<=x<1``, with the bounds written as typed (``x>0``, not ``x>0.0``)."""
        low = "" if self.min is None else f"{self.min:g}{'<' if self.min_open else '<='}"
        high = "" if self.max is None else f"{'<' if self.max_open else '<='}{self.max:g}"
        if self.max is None and self.min is not None:  # x>0 rather than 0<x
            return f"x{'>' if self.min_open else '>='}{self.min:g}"
        return f"{low}x{high}"


#: A finite number > 0 (learning rates, smoothing scales).
POSITIVE_FLOAT = FiniteFloatRange(min=0.0, min_open=True)


class RegistryChoice(click.Choice):
    """A ``click.Choice`` whose names are the keys of a core registry dict, read on first use.

    The registries live in modules that import numpy; reading them only when a value is
    checked or a command's help is shown keeps ``regcli --help`` fast.  ``first`` names are
    listed first, ``extra`` names (such as ``all``) are appended.
    """

    def __init__(self, module: str, attribute: str, *, first=(), extra=()):
        self.module, self.attribute = module, attribute
        self.first, self.extra = tuple(first), tuple(extra)
        self.case_sensitive = True

    @property
    def choices(self) -> tuple[str, ...]:
        registry = getattr(importlib.import_module(self.module), self.attribute)
        names = list(self.first)
        names += [str(name) for name in registry if str(name) not in names]
        return (*names, *self.extra)


class BinsPair(click.ParamType):
    """``N`` (both images) or ``N,M`` (first, second image): whole numbers in a range."""

    name = "bins"

    def __init__(self, minimum: int, maximum: int):
        self.minimum, self.maximum = minimum, maximum

    def convert(self, value, param, ctx):
        if isinstance(value, int) or (isinstance(value, tuple) and len(value) == 2):
            return value
        parts = [part.strip() for part in str(value).split(",")]
        try:
            counts = [int(part) for part in parts]
        except ValueError:
            counts = []
        if len(counts) not in (1, 2) or not all(self.minimum <= c <= self.maximum for c in counts):
            self.fail(
                f"expected N or N,M: whole numbers of bins from {self.minimum} to "
                f"{self.maximum}, got {value!r}",
                param,
                ctx,
            )
        return counts[0] if len(counts) == 1 else (counts[0], counts[1])
