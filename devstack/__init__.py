"""The embedded development stack behind `make dev`, also used by the tests."""
