"""Share links and community-share requests as event-sourced aggregates: pure, no I/O."""
