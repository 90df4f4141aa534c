"""A file whose import fails."""
import numpy as np
from correct_loops import no_such_function  # noqa: F401
