"""share_service application."""
