"""community_publisher entrypoints."""
