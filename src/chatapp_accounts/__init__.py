"""chatapp-accounts: Vonage's External Accounts API, implemented as a real service."""

__version__ = "0.1.0"
