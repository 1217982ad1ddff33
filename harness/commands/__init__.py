"""One module per `fetchmail-harness` subcommand.

Each module defines NAME (the subcommand), HELP (one line), add_arguments(parser)
and run(args) -> int. harness.cli discovers them; no central list to edit.
"""
