"""The rules of the service: accounts, applications and tenants. No HTTP, no SQL."""
