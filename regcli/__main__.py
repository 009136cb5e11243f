"""``python -m regcli``: the same as the ``regcli`` command."""

from regcli.cli.main import main

if __name__ == "__main__":
    main()
