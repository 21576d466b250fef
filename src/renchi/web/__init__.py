"""The Starlette application: routes per area, middleware, error handlers."""
