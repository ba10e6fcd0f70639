"""Dev-only stand-in for the community site: records uploads and can be told to fail (§6)."""
