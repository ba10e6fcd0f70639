"""settings_service adapters."""
