"""settings_service application."""
