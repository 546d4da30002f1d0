"""`python -m higgs_cli` runs the `higgs` command."""

from higgs_cli.cli.app import main

if __name__ == "__main__":
    main()
