"""Training and evaluation: data sets, recipes, the training loop (issue: training)."""

from reszoo.train.data import Dataset, ImageSet
from reszoo.train.data import load as load_dataset
from reszoo.train.loop import TrainResult, evaluate, train
from reszoo.train.recipes import ONECYCLE, PAPER, RECIPES, Recipe, get_recipe

__all__ = [
    "ONECYCLE",
    "PAPER",
    "RECIPES",
    "Dataset",
    "ImageSet",
    "Recipe",
    "TrainResult",
    "evaluate",
    "get_recipe",
    "load_dataset",
    "train",
]
