"""community_publisher adapters."""
