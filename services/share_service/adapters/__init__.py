"""share_service adapters."""
