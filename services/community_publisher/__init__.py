"""community_publisher."""
