"""Student models. Importing this package registers every model file."""

from . import cnn3  # noqa: F401  (registers)
from . import mini_inception_resnet, mobilenet1d  # noqa: F401  (registers the students)
from . import clst, inception_resnet  # noqa: F401  (registers the teachers)
from . import early_exit  # noqa: F401  (registers the early-exit students)
from . import signal_detector  # noqa: F401  (registers the signal detector, contract version 2)
from . import detecting  # noqa: F401  (registers the classifiers with detector heads, contract version 2)
from . import ensemble  # noqa: F401  (registers the ensemble of trained models)
from .registry import create_model, default_config, list_models, register_model

__all__ = ["create_model", "default_config", "list_models", "register_model"]
