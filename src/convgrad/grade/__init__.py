"""Grade anyone's conv layer: find, shrink and name the mistake.

    from convgrad.grade import grade
    report = grade(file="layers.py")               # conv_forward_naive / conv_backward_naive
    print(report)                                  # table, shrunk failures, diagnoses, score
    report.mistakes                                # e.g. ['no-zero-insertion']

or ``convgrad grade layers.py``. The user's code runs over a battery of geometries
(:mod:`.battery`) in a worker process with a time limit per call (:mod:`.runner`); each
output is compared with convgrad's and the backward also with central differences of the
user's own forward (:mod:`.grader`, :mod:`.compare`); failures are shrunk to the smallest
failing geometry (:mod:`.shrink`) and diagnosed (:mod:`.diagnose`): a pattern over the
geometries (:mod:`.pattern`) and the known mistakes of :mod:`.catalog`, each a wrong
implementation kept in :mod:`.mistakes`. Depends on convgrad.functional only.
"""
from .battery import BATTERY, Geometry
from .catalog import CATALOG
from .grader import GradeError, grade
from .report import GradeReport

__all__ = ["grade", "GradeReport", "GradeError", "Geometry", "BATTERY", "CATALOG"]
