"""Knowledge distillation: a registry of distillers (kd, skd, nkd, bdkd), a teacher-output
cache, and the trainer hooks (session.py). Importing this package registers every method."""

from . import bdkd, kd, nkd, skd  # noqa: F401  (registers)
from .registry import (Distiller, create_distiller, default_config, get_distiller, list_distillers,
                       register_distiller, resolve_config)

__all__ = ["Distiller", "create_distiller", "default_config", "get_distiller", "list_distillers",
           "register_distiller", "resolve_config"]
