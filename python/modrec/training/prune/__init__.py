"""Channel pruning: physical removal of conv channels (torch-pruning's dependency graph does the
surgery), ranked by our BN-scale x redundancy criterion or a classic baseline."""

from .criteria import CRITERIA, GammaRedundancyImportance, create_criterion
from .sparsity import BnSparsity
from .surgery import PruneReport, fit_to_state_dict, prune

__all__ = ["BnSparsity", "CRITERIA", "GammaRedundancyImportance", "PruneReport", "create_criterion", "fit_to_state_dict",
           "prune"]
