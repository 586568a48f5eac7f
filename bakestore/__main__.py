"""``python -m bakestore``: the same as the ``bakestore`` command."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="bakestore")
