"""Bounds on sizes users give, far past any real use, so that a typo is refused at
once instead of allocating terabytes or running for ever."""

#: Images in one forward pass or training step. 65,536 CIFAR images in float32
#: are 0.8 GB of input alone; an ImageNet-sized batch of this many is 39 GB.
MAX_BATCH = 65_536
