"""pyserial URL handlers of captures: ``replay://`` (see :mod:`.protocol_replay`).

pyserial finds ``protocol_replay`` here once ``"pos_sim.replay.urlhandler"`` is in
``serial.protocol_handler_packages``; :func:`pos_sim.replay.register_url_scheme` puts it there.
"""
