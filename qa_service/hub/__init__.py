"""Websocket endpoints: message format, per-socket sender, viewer/moderator/host."""
