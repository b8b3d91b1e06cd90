"""Studies: many training runs planned as data, trained, exported, measured and reported.

* ``runner.py``: what every study shares: the options (one meaning each), the plan (training jobs,
  finishing steps, the report), the freshness check, the rows kept from earlier runs, and the
  show-and-run loop;
* ``jobs.py``: running the training jobs, one after another or several at once in dependency order;
* ``distillation.py``, ``pruning.py``, ``early_exit.py``: the three studies, as definitions
  (which runs, how each is finished, which report). ``apps/<name>_study`` runs them.
"""

from .runner import PlannedRun, Study, main, plan_finish, plan_training

__all__ = ["PlannedRun", "Study", "main", "plan_finish", "plan_training"]
