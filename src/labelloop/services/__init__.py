"""Use cases shared by the CLI, the web API and the jobs. Each takes a ProjectContext."""

__all__: list[str] = []
