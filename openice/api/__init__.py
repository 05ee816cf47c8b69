"""The HTTP service: FastAPI routers over the servicing, decisioning, matching, analytics and scoring layers."""
