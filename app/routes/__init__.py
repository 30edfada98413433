"""One router module per concern."""
