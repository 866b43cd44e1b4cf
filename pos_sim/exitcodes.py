"""Every exit status the ``pos-sim`` command line uses, in one table (listed in docs/cli.md).

The diagnostic bits 1 to 64 are smartctl's model (docs/diagnostics.md): ``pos-sim diag`` ORs
them together, and every other command uses the same bit for the same kind of failure, so a
script reads one table.  Three kinds of failure that are not about a terminal have one code
each, whatever the command:

* **not found** (an unknown serial, ticket, message or component) and **refused** (the host's
  rules said no before anything changed: a ticket move the timeline does not allow, unbind
  without a backup, card data in a text) are :data:`USAGE`, 1: what was asked cannot be done
  as asked, and nothing was changed;
* a **registry failure** (cannot open, create or write the database, a schema from a newer
  pos-sim, somebody else's SQLite file) is :data:`REGISTRY`, 128, a bit no diagnosis sets;
* an **interrupt** (Ctrl-C, or EOF at a prompt) is :data:`INTERRUPTED`, 130, the shell's own
  128 + SIGINT, never combined with another bit.

This module is the only place the numbers are written.  ``drivers/`` and ``protocols/`` cannot
import the application, so :mod:`drivers.errors` and :mod:`protocols.pos.errors` keep copies of
the few they use, the emulator (which stands on the protocol alone) raises errors the ``emulate``
command maps to these, and docs/cli.md's table and the report schema's bound are checked against
this module by the tests.  :func:`summary` is the line ``pos-sim --help`` ends with.
"""

from __future__ import annotations

from typing import Final

OK: Final = 0
#: bad command line or input file (key file, scenario, capture); also NOT_FOUND and REFUSED
USAGE: Final = 1
#: the port could not be opened
PORT: Final = 2
#: protocol or communication failure: a request failed, the terminal hung or restarted, or an
#: operation's answer never came (its outcome is unknown)
COMMUNICATION: Final = 4
#: a component failed and needs repair; for ``device``: the terminal refused the operation
FAILED: Final = 8
#: a warning (or failure) the merchant can fix
WARNING: Final = 16
#: the terminal is locked (tamper)
LOCKED: Final = 32
#: the terminal's event log holds errors
EVENT_LOG: Final = 64
#: the registry could not be opened, read or written (one bit, every command)
REGISTRY: Final = 128
#: interrupted (Ctrl-C or end of input at a prompt): 128 + SIGINT, as the shell reports it
INTERRUPTED: Final = 130

#: something the command line names does not exist (serial, ticket, message, component)
NOT_FOUND: Final = USAGE
#: the host refused the request before changing anything (ticket move, missing backup, card data)
REFUSED: Final = USAGE
#: a check against a reference failed: a replay differed from its expectation, the audit log's
#: hash chain is broken (the same bit as a communication failure: bytes not as they should be)
DIFFERS: Final = COMMUNICATION

#: the bits ``pos-sim diag`` ORs together, with their meaning (docs/diagnostics.md)
DIAG_BITS: Final = {
    USAGE: "bad command line",
    PORT: "the port could not be opened",
    COMMUNICATION: "protocol or communication failure",
    FAILED: "a component failed and needs repair",
    WARNING: "a warning the merchant can fix",
    LOCKED: "the terminal is locked (tamper)",
    EVENT_LOG: "the terminal's event log holds errors",
}

#: the largest status ``pos-sim diag`` can give: every diagnostic bit at once
DIAG_MAX: Final = sum(DIAG_BITS)


def summary() -> str:
    """The exit statuses in one sentence, for ``--help``."""
    bits = ", ".join(f"{bit} {meaning}" for bit, meaning in DIAG_BITS.items())
    return (f"Exit status is a bitmask: {bits}; {REGISTRY} the registry failed, {INTERRUPTED} interrupted "
            f"(not found and refused are {NOT_FOUND}; every command's, in docs/cli.md).")
