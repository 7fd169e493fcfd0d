"""``python -m alphaseq``: the same command line as the ``alphaseq`` script."""

from alphaseq.cli import main

if __name__ == "__main__":
    main()
