"""The web API: FastAPI app factory, routes per resource, dependencies, schemas, error mapping."""

from labelloop.api.app import create_app

__all__ = ["create_app"]
