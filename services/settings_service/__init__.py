"""settings_service."""
