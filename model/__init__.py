"""Offline side of the service: data, architectures, training, export and evaluation."""
