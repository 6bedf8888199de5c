"""HTTP: the app factory, the routes of each API, authentication and the error table."""
