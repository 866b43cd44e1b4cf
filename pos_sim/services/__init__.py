"""Services the command line and the TUI share: lifecycle operations and backups on a terminal, the key file."""
