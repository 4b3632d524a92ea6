"""CLI subcommands of the core (render, sample-data)."""
