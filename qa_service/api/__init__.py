"""REST routes: auth, snapshots, moderation actions, OpenAPI schema."""
