"""``python -m pos_sim.emulator [--scenario NAME|PATH] [--transport pty|tcp[:PORT]] ...``."""

from pos_sim.emulator.cli import main

raise SystemExit(main())
