"""The early-exit study: each student with one exit at each placement, trained by each recipe,
exported as stages, and measured per SNR against the plain twin (exit rates, accuracy, mean FLOPs,
ONNX Runtime time per frame side by side).

    apps/early_exit_study [--models mobilenet1d,cnn3] [--recipes heads,joint,convhead] [--placements 1,2,3,4]
                          [--jobs N] [--threads 1] [--stage train|finish] [--dry-run]

Recipes: heads = configs/<student>_ee.yaml (exit heads on the frozen trained twin), any other name R =
configs/<student>_ee-R.yaml (joint: the twin fine-tuned with its exit; convhead: heads with a convolution
in each exit head; two_phase: from scratch, 30 epochs).
Runs go to runs/<student>_ee-p<k> (heads) or runs/<student>_ee-R-p<k>; the plain twin is
models/<student>.onnx (apps/distillation_study ships it). The report goes to models/EARLY_EXIT.md,
models/early_exit.json and models/early_exit.png; it shows this invocation's runs and every other
run of the study trained to the end and measured since.
"""

import json
import re

import yaml

from .recipes import Recipes, add_recipe_options, check_recipe_options
from .runner import PlannedRun, Study, comma_list, export_command, modrec_command

STUDENTS = ("cnn3", "mobilenet1d", "mini_inception_resnet")
PLACEMENT = re.compile(r"p\d+")  # what follows <prefix>- in a run's name


def recipes(args):
    return Recipes(args.configs, "_ee", base="heads")


def block_count(student):
    """The blocks an exit can follow (placements run from 1 to blocks - 1), as the model splits."""
    from ..models import create_model

    return len(create_model(student).backbone_blocks())


class EarlyExitStudy(Study):
    name = "early_exit_study"
    doc = __doc__

    def add_options(self, parser):
        add_recipe_options(parser, STUDENTS, "students", ["heads", "joint", "convhead"],
                           "how the exits are trained: heads, or R for configs/<student>_ee-R.yaml")
        parser.add_argument("--placements", type=comma_list(int), default=[1, 2, 3, 4],
                            help="blocks an exit follows (default 1,2,3,4); skipped where a student has fewer blocks")

    def check_options(self, args, parser):
        check_recipe_options(args, parser, STUDENTS, recipes(args))

    def _run(self, name, model, config, settings, overrides=()):
        return PlannedRun(name, config, settings["train"]["epochs"], list(overrides),
                          info={"model": model, "settings": settings})

    def planned_runs(self, args):
        runs = []
        blocks = {model: block_count(model) for model in args.models}
        for model, recipe in args.pairs:
            config = recipes(args).config(model, recipe)
            settings = yaml.safe_load(config.read_text())
            for k in args.placements:
                if not 1 <= k < blocks[model]:
                    continue
                name = f"{recipes(args).run_prefix(model, recipe)}-p{k}"
                overrides, inputs = [f"experiment={name}", f"model.cfg.exits=[{k}]"], []
                if (settings.get("exits") or {}).get("init_from"):  # the twin of this study's runs dir
                    twin = args.runs / model / "best.pt"
                    overrides.append(f"exits.init_from={twin}")
                    inputs.append((twin, f"apps/distillation_study --only {model} trains it, or modrec from-onnx "
                                         f"--onnx {args.models_dir / (model + '.onnx')} --out {twin} rebuilds it"))
                run = self._run(name, model, config, settings, overrides)
                run.inputs = inputs
                runs.append(run)
        return runs

    def runs_on_disk(self, args):
        found = []
        for model in STUDENTS:
            for recipe, config in recipes(args).all(model):
                settings = yaml.safe_load(config.read_text())
                stem = f"{recipes(args).run_prefix(model, recipe)}-"
                for run_dir in sorted(args.runs.glob(f"{stem}p*")):
                    if PLACEMENT.fullmatch(run_dir.name[len(stem):]):
                        found.append(self._run(run_dir.name, model, config, settings))
        return found

    def result_path(self, run, args):
        return args.runs / run.name / "exits_eval.json"

    def finish_steps(self, run, args):
        model = run.info["model"]
        data = args.data
        if data is None:  # the twin's test split
            summary = args.runs / model / "eval" / "summary.json"
            if summary.is_file():
                data = json.loads(summary.read_text())["data_root"]
            elif args.dry_run:
                data = "DATA"
            else:
                raise SystemExit(f"{self.name}: {summary} is missing: evaluate the twin first "
                                 f"(apps/distillation_study --only {model}) or give --data")
        # calibrated as the committed config says now (a run trained under an older config too)
        exits_cfg = run.info["settings"].get("exits") or {}
        calibration = []
        for key, flag in (("policy", "--exit-policy"), ("budget_pp", "--exit-budget-pp"),
                          ("budget_snr_min", "--exit-budget-snr-min")):
            if exits_cfg.get(key) is not None:
                calibration += [flag, str(exits_cfg[key])]
        onnx = self.onnx_path(run, args)
        return [export_command(args.runs / run.name, onnx, *calibration),
                [*modrec_command(), "exits-eval", "--onnx", str(onnx), "--plain", str(args.models_dir / f"{model}.onnx"),
                 "--data", str(data), "--out", str(self.result_path(run, args))]]

    def report_command(self, rows, args):
        models = args.models_dir
        return [*modrec_command(), "exits-report", *(str(self.result_path(run, args)) for run in rows),
                "--markdown", str(models / "EARLY_EXIT.md"), "--json", str(models / "early_exit.json"),
                "--plot", str(models / "early_exit.png")]


STUDY = EarlyExitStudy()
