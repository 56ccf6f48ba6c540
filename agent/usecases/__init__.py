"""The till's use cases."""
