"""pyserial URL handlers of the emulator: ``emu://`` (see :mod:`.protocol_emu`).

pyserial finds ``protocol_emu`` here once ``"pos_sim.emulator.urlhandler"`` is in
``serial.protocol_handler_packages``; :func:`pos_sim.emulator.register_url_scheme` puts it there.
"""
