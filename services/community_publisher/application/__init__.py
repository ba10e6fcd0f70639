"""community_publisher's use cases: record each request's outcome, and publish a request."""
