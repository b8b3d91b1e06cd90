"""A study's training recipes: one committed config each, named after the architecture; and the
``--models`` / ``--recipes`` options of the studies that sweep architectures by recipe."""

from pathlib import Path

from .runner import comma_list


def add_recipe_options(parser, default_models, models_help, default_recipes, recipes_help):
    """``--models`` (architectures) and ``--recipes``, both comma-separated lists."""
    parser.add_argument("--models", type=comma_list(str), default=list(default_models),
                        help=f"{models_help} (default {','.join(default_models)})")
    parser.add_argument("--recipes", type=comma_list(str), default=list(default_recipes),
                        help=f"{recipes_help} (default {','.join(default_recipes)})")


def check_recipe_options(args, parser, known_models, recipes):
    """Refuse unknown architectures and recipes without a config; sets ``args.pairs``, the
    (architecture, recipe) pairs to run."""
    for model in args.models:
        if model not in known_models:
            parser.error(f"--models: unknown {model!r}; known: {', '.join(known_models)}")
    try:
        args.pairs = recipes.pairs(args.models, args.recipes)
    except ValueError as err:
        parser.error(f"--recipes: {err}")


class Recipes:
    """Recipes of one study: the base recipe is configs/<architecture><stem>.yaml, recipe R is
    configs/<architecture><stem>-R.yaml; runs of the base recipe are named <architecture><stem>-...,
    runs of R <architecture><stem>-R-..."""

    def __init__(self, configs_dir, stem, base):
        self.configs_dir, self.stem, self.base = Path(configs_dir), stem, base

    def config(self, architecture, recipe):
        suffix = "" if recipe == self.base else f"-{recipe}"
        return self.configs_dir / f"{architecture}{self.stem}{suffix}.yaml"

    def run_prefix(self, architecture, recipe):
        return f"{architecture}{self.stem}" if recipe == self.base else f"{architecture}{self.stem}-{recipe}"

    def all(self, architecture):
        """(recipe, config) of every committed recipe of ``architecture``, base first."""
        found = []
        for config in sorted(self.configs_dir.glob(f"{architecture}{self.stem}*.yaml")):
            rest = config.stem[len(f"{architecture}{self.stem}"):]
            if rest == "":
                found.insert(0, (self.base, config))
            elif rest.startswith("-"):
                found.append((rest[1:], config))
        return found

    def pairs(self, architectures, recipes):
        """(architecture, recipe) pairs that have a config. Raises ValueError naming the missing
        config of a recipe no architecture has; a recipe only some have is skipped for the others."""
        found = [(a, r) for a in architectures for r in recipes if self.config(a, r).is_file()]
        for recipe in recipes:
            if not any(r == recipe for _, r in found):
                raise ValueError(f"recipe {recipe!r} needs {self.config(architectures[0], recipe)}, which does not exist")
        for architecture in architectures:
            for recipe in recipes:
                if (architecture, recipe) not in found:
                    print(f"note: no {self.config(architecture, recipe).name}: recipe {recipe} skipped for {architecture}",
                          flush=True)
        return found
