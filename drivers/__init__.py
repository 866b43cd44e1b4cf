"""The hardware abstraction layer: transports, discovery, the link and the Terminal API.

Imports ``protocols`` only (the import rule pos_sim -> drivers -> protocols is checked by
tests/test_layers.py).
"""
