"""The JSON API's routes, one module per area."""
