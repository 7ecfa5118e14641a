"""``python -m visiontasks ...`` runs the CLI."""

from visiontasks.cli import main

if __name__ == "__main__":
    main()
