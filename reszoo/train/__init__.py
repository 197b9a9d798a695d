"""Training and evaluation: data sets, the training loop, recipes (issue: training)."""
