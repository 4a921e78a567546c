"""Fault-injection and security tests: the provider against a misbehaving network and server."""
