"""What the registry refuses, each with a message a technician can act on.

Each class carries its exit status (docs/cli.md): the database failing is
:data:`~pos_sim.exitcodes.REGISTRY`, a serial or ticket it does not hold is
:data:`~pos_sim.exitcodes.NOT_FOUND`, and a request it refuses (a ticket move the timeline does
not allow, card data, a malformed value) is :data:`~pos_sim.exitcodes.REFUSED`.
"""

from __future__ import annotations

from pos_sim import exitcodes


class RegistryError(Exception):
    """Base of every registry error; as such, the registry refused what it was given."""

    exit_code: int = exitcodes.REFUSED


class RegistryUnavailable(RegistryError):
    """The database cannot be reached, created or written (server down, no driver, disk full)."""

    exit_code = exitcodes.REGISTRY


class SchemaTooNew(RegistryError):
    """The database was written by a newer pos-sim than this one."""

    exit_code = exitcodes.REGISTRY


class ForeignDatabase(RegistryError):
    """The database holds tables that are not the registry's: another program's file."""

    exit_code = exitcodes.REGISTRY


class UnknownDevice(RegistryError):
    """No device with that serial number is registered."""

    exit_code = exitcodes.NOT_FOUND


class UnknownTicket(RegistryError):
    """No repair ticket with that id."""

    exit_code = exitcodes.NOT_FOUND


class IllegalTransition(RegistryError):
    """A repair ticket was asked to move to a state it cannot reach from where it is."""

    exit_code = exitcodes.REFUSED


class CardDataRefused(RegistryError):
    """Something to be stored looked like it carried a card number (never repeated here)."""

    exit_code = exitcodes.REFUSED
