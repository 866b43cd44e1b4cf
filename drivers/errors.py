"""The driver layer's exception family.

Every failure that reaches a caller is a :class:`DriverError` carrying the exit-status bit it
stands for (docs/diagnostics.md: 2 the port could not be opened, 4 protocol or communication failure) and
a message a technician can act on.  pyserial's ``SerialException``, ``OSError`` and
``termios.error`` never leave the package: a pulled cable is :class:`DeviceDisconnected`
whatever the operating system said.
"""

from __future__ import annotations

# drivers/ cannot import the application: these are copies of pos_sim/exitcodes.py's USAGE, PORT
# and COMMUNICATION, held equal to them by a test (protocols/pos/errors.py keeps COMMUNICATION too)
EXIT_USAGE = 1
EXIT_OPEN = 2
EXIT_COMMUNICATION = 4


class DriverError(Exception):
    """Base of every error the driver layer raises."""

    exit_code = EXIT_COMMUNICATION


class PortOpenError(DriverError):
    """The port could not be opened."""

    exit_code = EXIT_OPEN


class PortNotFound(PortOpenError):
    """No such device, or nothing listening at the URL."""


class PermissionDenied(PortOpenError):
    """The operating system refused access to the device."""


class PortBusy(PortOpenError):
    """Another program holds the port."""


class DeviceDisconnected(DriverError):
    """The device went away mid-session (cable pulled, USB reset, emulator stopped)."""


class ResponseTimeout(DriverError):
    """The terminal did not answer, even after the retransmits the protocol allows.

    ``noisy`` is True when damaged frames (bad CRC, cut short) arrived while waiting: the
    terminal was talking and the line spoilt it, which is worth asking again, unlike silence.
    """

    def __init__(self, message: str, *, noisy: bool = False) -> None:
        super().__init__(message)
        self.noisy = noisy


class DeadlinePassed(ResponseTimeout):
    """The caller's overall time ran out before the request was sent (nothing went out)."""


class SelfTestLost(ResponseTimeout):
    """A running self-test stopped reporting progress (the terminal hung mid-test)."""


class RequestRefused(DriverError):
    """The terminal answered NAK with a final reason (not permitted, malformed, ...).

    ``definite`` is True when no send of the request went unanswered: every one was refused,
    so the terminal carried none of them out.  (A send that timed out may have been executed
    with its answer lost; a later NAK bad_crc of its retransmission says nothing about it.)
    """

    def __init__(self, message: str, reason: str | int, *, definite: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.definite = definite


class RequestTooLarge(DriverError):
    """A request would exceed the payload size negotiated at HELLO; nothing was sent.

    The caller's arguments are too long for this terminal (exit status 1, like any argument
    the host refuses before sending)."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class ProtocolViolation(DriverError):
    """The terminal answered with something the protocol does not allow here."""


class TransferError(DriverError):
    """A paged transfer failed its checks (page CRC or final digest) or could not be saved."""


class LinkClosed(DriverError):
    """The link was closed by this side; no more requests can be made."""


class SessionLost(DriverError):
    """The terminal restarted mid-session (or forgot the session some other way): every
    self-test that was running on it is gone, and it answers nothing but HELLO and PING until
    the host says HELLO again.

    ``cause`` says how the host noticed (docs/protocol.md section 6, "Noticing a restart"):
    ``uptime`` (a PONG's uptime went back), ``boot_id`` (a new HELLO_REPLY carried another boot
    id) or ``not_permitted`` (a request any session may make was refused).
    """

    exit_code = EXIT_COMMUNICATION

    def __init__(self, message: str, cause: str) -> None:
        super().__init__(message)
        self.cause = cause
