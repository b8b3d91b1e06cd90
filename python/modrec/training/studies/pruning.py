"""The channel-pruning sweep: every (architecture, criterion, ratio) pruned from the trained
twin in runs/<architecture>/best.pt, fine-tuned, exported, evaluated on the test split, and
compared in one report (tables + accuracy-vs-FLOPs plots).

    apps/pruning_study [--models cnn3,mobilenet1d] [--criteria gamma-redundancy,l1] [--ratios 0.3,0.5]
                       [--strategies local,global] [--recipes base,kd10] [--seeds 0,1,2] [--jobs N]
                       [--stage train|finish] [--dry-run]

Each run is a recipe's config with the criterion, ratio and strategy set on the command line (so
every run is reproducible with one `modrec train` line, printed here): recipe base is
configs/<architecture>-prune.yaml (2 fine-tuning epochs), recipe R is
configs/<architecture>-prune-R.yaml (kd10: 10 epochs with the unpruned twin as teacher; nkd10,
nkd30: with the Inception-ResNet teacher; the teacher itself: --models inception_resnet --recipes
kd2). Runs go to runs/<architecture>-prune[-R]-<criterion>[-global]-<ratio %>[-s<seed>]
(--seeds: several fine-tuning seeds per point, so criteria are compared beyond one run's noise);
finished runs are skipped and interrupted ones resumed. The unpruned baselines are evaluated by
apps/distillation_study (runs/<architecture>/eval). The report goes to models/PRUNING.md,
models/pruning.json and models/pruning-<architecture>.png; it shows this invocation's runs and
every other run of the sweep trained to the end and evaluated since, so finishing one corner
keeps the rest; the seeds of one point make one row (mean, spread, count).
"""

import itertools
import re

import yaml

from .recipes import Recipes, add_recipe_options, check_recipe_options
from .runner import PlannedRun, Study, comma_list, modrec_command

MODELS = ("cnn3", "mobilenet1d", "mini_inception_resnet")  # the default sweep: the students
TEACHERS = ("inception_resnet",)  # prunable on request (--models inception_resnet)
PRUNABLE = MODELS + TEACHERS
CRITERIA = ("gamma-redundancy", "l1", "bn-gamma", "random")
RATIOS = (0.3, 0.5, 0.7, 0.9)
STRATEGIES = ("local", "global")
RUN_SUFFIX = re.compile(r"\d+(-s\d+)?")  # what follows <prefix>-<criterion>[-global]- in a run's name


def recipes(args):
    return Recipes(args.configs, "-prune", base="base")


def run_name(prefix, criterion, ratio, strategy, seed=0):
    """<prefix>-<criterion>[-global]-<ratio %>[-s<seed>]: seed 0 is the sweep's first run of a point."""
    return (f"{prefix}-{criterion}{'-global' if strategy == 'global' else ''}-{round(100 * ratio)}"
            + (f"-s{seed}" if seed else ""))


class PruningStudy(Study):
    name = "pruning_study"
    doc = __doc__

    def add_options(self, parser):
        add_recipe_options(parser, MODELS, f"architectures to prune, of {','.join(PRUNABLE)}", ["base"],
                           "fine-tuning recipes: base (configs/<model>-prune.yaml) or R (configs/<model>-prune-R.yaml)")
        parser.add_argument("--criteria", type=comma_list(str), default=list(CRITERIA), help=f"default {','.join(CRITERIA)}")
        parser.add_argument("--ratios", type=comma_list(float), default=list(RATIOS), help="channel ratios (default 0.3,0.5,0.7,0.9)")
        parser.add_argument("--strategies", type=comma_list(str), default=["local"], help="local and/or global (default local)")
        parser.add_argument("--seeds", type=comma_list(int), default=[0],
                            help="training seeds per point (default 0); the report shows their mean and spread")

    def check_options(self, args, parser):
        check_recipe_options(args, parser, PRUNABLE, recipes(args))
        for criterion in args.criteria:
            if criterion not in CRITERIA:
                parser.error(f"--criteria: unknown {criterion!r}; known: {', '.join(CRITERIA)}")
        if any(not 0 < r < 1 for r in args.ratios):
            parser.error(f"--ratios: each must be in (0, 1), got {args.ratios}")
        if any(seed < 0 for seed in args.seeds) or len(set(args.seeds)) != len(args.seeds):
            parser.error(f"--seeds: distinct integers >= 0, got {args.seeds}")
        if any(s not in STRATEGIES for s in args.strategies):
            parser.error(f"--strategies: local and/or global, got {args.strategies}")

    def planned_runs(self, args):
        runs = []
        for model, recipe in args.pairs:
            config = recipes(args).config(model, recipe)
            settings = yaml.safe_load(config.read_text())
            source = args.runs / model / "best.pt"
            # a recipe that distils from the net it prunes (kd10) must follow --runs for both
            teacher = ((settings.get("distill") or {}).get("teacher") or {}).get("checkpoint")
            teacher_is_source = teacher is not None and teacher == settings["prune"]["checkpoint"]
            prefix = recipes(args).run_prefix(model, recipe)
            for strategy, criterion in itertools.product(args.strategies, args.criteria):
                for ratio, seed in itertools.product(args.ratios, args.seeds):
                    name = run_name(prefix, criterion, ratio, strategy, seed)
                    overrides = [f"experiment={name}", f"prune.checkpoint={source}", f"prune.criterion={criterion}",
                                 f"prune.ratio={ratio}", f"prune.strategy={strategy}"]
                    if seed:  # another draw of the same point: fine-tuning order, calibration, random's choice
                        overrides.append(f"seed={seed}")
                    if teacher_is_source:
                        overrides.append(f"distill.teacher.checkpoint={source}")
                    if criterion != "gamma-redundancy":  # the base config's options belong to ours
                        overrides.append("prune.criterion_cfg={}")
                    runs.append(PlannedRun(name, config, settings["train"]["epochs"], overrides, info={"model": model},
                                           inputs=[(source, f"apps/distillation_study --only {model} trains it")]))
        return runs

    def runs_on_disk(self, args):
        found = []
        for model in PRUNABLE:
            for recipe, config in recipes(args).all(model):
                epochs = yaml.safe_load(config.read_text())["train"]["epochs"]
                prefix = recipes(args).run_prefix(model, recipe)
                for criterion, strategy in itertools.product(CRITERIA, STRATEGIES):
                    stem = f"{prefix}-{criterion}{'-global' if strategy == 'global' else ''}-"
                    for run_dir in sorted(args.runs.glob(f"{stem}*")):
                        if RUN_SUFFIX.fullmatch(run_dir.name[len(stem):]):
                            found.append(PlannedRun(run_dir.name, config, epochs, info={"model": model}))
        return found

    def report_command(self, rows, args):
        summaries = []
        owners = {run.info["model"] for run in rows}
        for model in [m for m in PRUNABLE if m in args.models or m in owners]:
            baseline = args.runs / model / "eval" / "summary.json"
            if baseline.is_file() or args.dry_run:
                summaries.append(baseline)
            else:
                print(f"note: no baseline {baseline} (apps/distillation_study --only {model} evaluates it)", flush=True)
        summaries += [self.result_path(run, args) for run in rows]
        return [*modrec_command(), "prune-report", *map(str, summaries), "--markdown", str(args.models_dir / "PRUNING.md"),
                "--json", str(args.models_dir / "pruning.json"), "--plot-dir", str(args.models_dir)]


STUDY = PruningStudy()
