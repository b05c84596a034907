"""Sub-commands of ``patchcore`` beyond the core four, one module each (see cli.EXTRA_COMMANDS)."""
