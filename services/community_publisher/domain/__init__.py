"""What may be uploaded, and how much of the chat, at each access level: pure, no I/O."""
