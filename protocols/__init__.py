"""The wire protocols pos-sim speaks, one package each: pure code, no I/O, no clocks, no threads.

* :mod:`protocols.pos`: the pos-sim terminal protocol (``docs/protocol.md``): frames, messages,
  codes, the streaming deframer and the session rules;
* :mod:`protocols.escpos`: the status side of ESC/POS receipt printers.

Nothing here imports drivers/ or pos_sim/; drivers/ feed these with bytes and time.
"""
