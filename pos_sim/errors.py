"""Errors of the application layer that the command line turns into exit statuses."""

from __future__ import annotations

from pos_sim import exitcodes


class UsageError(Exception):
    """The command line is wrong (exit status 1); the message is the one line to print."""

    exit_code = exitcodes.USAGE
