"""One module per command of ``convgrad``: each has ``register(commands)``, which adds its
parser to the subparsers and sets ``run`` to the function that does the work."""

# the order in which `convgrad --help` lists them
NAMES = ("demo", "train", "predict", "check", "grade", "bench", "explain")
