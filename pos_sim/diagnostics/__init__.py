"""Diagnostics: self-test plans, the fault catalogue, findings and verdicts.

The fault catalogue (:mod:`pos_sim.diagnostics.catalogue`) says what every fault code means,
who can fix it and what to do, in zh-CN and en; everything else here reads its texts from it.
"""
