"""settings_service entrypoints."""
