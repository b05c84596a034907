"""The sub-commands of ``patchcore``, one module each; ``cli.py`` registers them and dispatches."""
