"""Feature subcommands of `forcebot`; each module adds its commands to `forcebot.cli.cli`."""
