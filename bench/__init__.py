"""Load benchmarks of the service against a naive anchor (``make bench``)."""
