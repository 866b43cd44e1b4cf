"""The hardware abstraction layer: transports, discovery, the link and the Terminal API.

Imports ``protocols`` only.  Built in issue 3; this package exists so the layout and the
import rule (pos_sim -> drivers -> protocols) hold from the first commit.
"""
