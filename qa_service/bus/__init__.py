"""Event bus between hub processes: channel names, Redis transport, replay."""
