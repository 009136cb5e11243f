"""The ``regcli`` command line: a thin click layer over :mod:`regcli`'s core.

``main.py`` holds the group, ``options.py`` the shared options and helpers, and each
subcommand has a module of its own.  Command modules import only click at module level and
the numerical core inside the command, so ``regcli --help`` stays fast.
"""
