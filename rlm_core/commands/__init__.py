"""Subcommands of ``rlm``; each module has ``register(commands)`` adding its parser.

Modules here import only light things at the top: ``rlm --help`` imports all of them.
"""
