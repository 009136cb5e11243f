"""Exception hierarchy.

Every error regcli raises on purpose derives from :class:`RegcliError`, so the CLI can turn
it into a one-line message and an exit code instead of a traceback.  They also derive from
:class:`ValueError` where the cause is a bad value, so library users can catch the usual type.

An :class:`InputError` about one argument of a public function carries that argument's Python
name in :attr:`InputError.param` (``"learning_rate"``, ``"bins"``...).  The core never names
command-line flags; the CLI maps ``param`` to its own option (``--lr``, ``--bins``) and reports
a bad option value as a usage error (exit code 2).
"""

from __future__ import annotations

__all__ = ["InputError", "RegcliError", "RegistrationError"]


class RegcliError(Exception):
    """Base class of all errors raised deliberately by regcli."""


class InputError(RegcliError, ValueError):
    """An input (file, array or option value) cannot be used; the message says why.

    Parameters
    ----------
    message : str
        The whole message.  When ``param`` is given the message starts with ``"param: "``.
    param : str, optional
        The Python name of the argument whose value is wrong (e.g. ``"learning_rate"``), or
        ``None`` when the problem is not one argument's value (an unreadable file, two images
        of different shapes).
    """

    def __init__(self, message: str, *, param: str | None = None):
        super().__init__(message)
        self.param = param

    @property
    def reason(self) -> str:
        """The message without its leading ``"param: "`` (for the CLI's own wording)."""
        text = str(self)
        prefix = f"{self.param}: "
        if self.param and text.startswith(prefix):
            return text[len(prefix) :]
        return text

    def __reduce__(self):  # keep ``param`` across pickling (process pools)
        return (_rebuild_input_error, (type(self), str(self), self.param))


def _rebuild_input_error(cls, message, param):
    return cls(message, param=param)


class RegistrationError(RegcliError, RuntimeError):
    """The registration could not be carried out (not: did not converge)."""
