"""Channel pruning: physical removal of conv channels (torch-pruning's dependency graph does the
surgery), ranked by our BN-scale x redundancy criterion or a classic baseline."""

from .criteria import CRITERIA, GammaRedundancyImportance, create_criterion
from .sparsity import add_bn_l1_subgradient_
from .surgery import PruneReport, fit_to_state_dict, prune

__all__ = ["CRITERIA", "GammaRedundancyImportance", "PruneReport", "add_bn_l1_subgradient_", "create_criterion",
           "fit_to_state_dict", "prune"]
