"""Whether a registration result can be trusted, as the CLI reports it: exit code 3.

Exit codes of ``regcli register`` (and the ``exit_code`` of each row of ``regcli compare
--json``): 0 = converged and quality verdict ``ok``; 3 = it ran, but the result is not
trustworthy (not converged, or verdict ``suspect``): the outputs are still written and
stderr says why and what to try; 1 = error; 2 = usage error.
"""

from __future__ import annotations

#: Exit code of a run whose result is not trustworthy.
EXIT_SUSPECT = 3


def exit_code(result) -> int:
    """0 if ``result`` is trustworthy (converged, quality verdict ``ok``), else
    :data:`EXIT_SUSPECT`."""
    return 0 if result.trustworthy else EXIT_SUSPECT


def problems(result) -> list[str]:
    """Why ``result`` is not trustworthy, in sentences (empty when it is)."""
    return result.problems()


def quality_line(quality: dict) -> str:
    """One text line of a result's ``quality`` dict (``to_dict()`` form)."""

    def number(key: str, fmt: str) -> str:
        value = quality.get(key)
        return "n/a" if value is None else format(value, fmt)

    return (
        f"  quality: {quality['verdict']} (correlation {number('correlation', '.3f')}, "
        f"NMI {number('nmi', '.3f')}, overlap {number('overlap', '.0%')}, "
        f"significance {number('significance', '.1f')}, "
        f"distinctness {number('distinctness', '.1f')})"
    )
