"""share_service entrypoints."""
