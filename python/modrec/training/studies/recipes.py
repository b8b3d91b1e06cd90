"""A study's training recipes: one committed config each, named after the architecture."""

from pathlib import Path


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
