"""``python -m hifield``: the same command as ``hifield``."""

from hifield.cli.main import main

if __name__ == "__main__":
    main()
