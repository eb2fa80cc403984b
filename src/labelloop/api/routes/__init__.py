"""One router per resource."""

from labelloop.api.routes import (
    annotations,
    auth,
    images,
    insights,
    jobs,
    labelstudio,
    models,
    projects,
    transfer,
    users,
)

ROUTERS = [auth.router, users.router, projects.router, images.router, annotations.router, jobs.router,
           models.router, insights.router, transfer.router, labelstudio.router]

__all__ = ["ROUTERS"]
