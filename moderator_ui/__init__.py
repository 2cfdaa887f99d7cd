"""Staff web UI (console, host display, overlay): static assets served by the app."""
