"""The `pipeline` command line. Each subcommand lives in its own `<name>_cmd.py` module."""
