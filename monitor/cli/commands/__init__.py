"""CLI subcommands, one module each (see monitor.cli.COMMANDS)."""
