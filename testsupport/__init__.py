"""Helpers only the tests and benchmarks need: images and uploads to send, servers to start, HTTP bodies."""
