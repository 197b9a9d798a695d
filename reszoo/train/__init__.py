"""Training and evaluation: data sets, recipes, the training loop (issue: training).

Names are imported on first use (reszoo.lazy): a recipe needs no torch.
"""

from reszoo.lazy import lazy_attributes

_WHERE = {
    "Dataset": "reszoo.train.data",
    "ImageSet": "reszoo.train.data",
    "load_dataset": "reszoo.train.data:load",
    "TrainResult": "reszoo.train.loop",
    "evaluate": "reszoo.train.metrics",
    "train": "reszoo.train.loop",
    "ONECYCLE": "reszoo.train.recipes",
    "PAPER": "reszoo.train.recipes",
    "RECIPES": "reszoo.train.recipes",
    "Recipe": "reszoo.train.recipes",
    "get_recipe": "reszoo.train.recipes",
}

__getattr__, __dir__ = lazy_attributes(__name__, _WHERE)

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
