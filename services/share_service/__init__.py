"""share_service."""
