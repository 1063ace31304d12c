"""Configuration: the one settings class, and the systems and legal entities a deployment runs."""

from config.settings import DEV_SECRET_PREFIX, Settings, default_entities

__all__ = ["DEV_SECRET_PREFIX", "Settings", "default_entities"]
