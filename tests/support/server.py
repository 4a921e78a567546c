"""The reference server as a subprocess; the runner lives in the package for the demo too."""

from airflow_provider.server.process import ReferenceServer, ReferenceServerError

__all__ = ["ReferenceServer", "ReferenceServerError"]
