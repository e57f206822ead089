"""Commands for this area; see COMMAND_MODULES in tracker/cli/__init__.py."""

COMMANDS: list = []
