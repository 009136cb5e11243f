"""Exception hierarchy.

Every error regcli raises on purpose derives from :class:`RegcliError`, so the CLI can turn
it into a one-line message and an exit code instead of a traceback.  They also derive from
:class:`ValueError` where the cause is a bad value, so library users can catch the usual type.
"""

__all__ = ["InputError", "RegcliError", "RegistrationError"]


class RegcliError(Exception):
    """Base class of all errors raised deliberately by regcli."""


class InputError(RegcliError, ValueError):
    """An input (file, array or option value) cannot be used; the message says why."""


class RegistrationError(RegcliError, RuntimeError):
    """The registration could not be carried out (not: did not converge)."""
