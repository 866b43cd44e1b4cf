"""What the registry refuses, each with a message a technician can act on."""

from __future__ import annotations


class RegistryError(Exception):
    """Base of every registry error."""


class RegistryUnavailable(RegistryError):
    """The database cannot be reached, created or written (server down, no driver, disk full)."""


class SchemaTooNew(RegistryError):
    """The database was written by a newer pos-sim than this one."""


class UnknownDevice(RegistryError):
    """No device with that serial number is registered."""


class UnknownTicket(RegistryError):
    """No repair ticket with that id."""


class IllegalTransition(RegistryError):
    """A repair ticket was asked to move to a state it cannot reach from where it is."""


class CardDataRefused(RegistryError):
    """Something to be stored looked like it carried a card number (never repeated here)."""
