"""community_publisher application."""
