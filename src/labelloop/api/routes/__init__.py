"""One router per resource."""

from labelloop.api.routes import (
    annotations,
    auth,
    images,
    insights,
    jobs,
    models,
    projects,
    transfer,
    users,
)

ROUTERS = [auth.router, users.router, projects.router, images.router, annotations.router, jobs.router,
           models.router, insights.router, transfer.router]

__all__ = ["ROUTERS"]
