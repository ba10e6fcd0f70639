"""The instance's settings as an event-sourced aggregate: pure, synchronous, no I/O."""
