"""Subcommands of the ``veriloss`` CLI; each module has ``add_parser(subparsers)`` and sets ``run`` on its parser."""
