"""Secret hashing, access-token encryption and key handling."""
