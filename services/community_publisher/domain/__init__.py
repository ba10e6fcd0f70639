"""What a community upload is, pure and synchronous: the body cut to the access level, the
attempts' results and backoff, and each request's recorded outcome. No I/O."""
