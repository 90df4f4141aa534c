"""The applications on top of the library: the command line and the work behind its commands.

:mod:`.cli` parses the command line; each command lives in :mod:`.commands`; the work is in
:mod:`.gradient_check`, :mod:`.bench`, the digits job (:mod:`.digits_data` the data and
the network, :mod:`.digits` the training loop, :mod:`.digits_demo`, :mod:`.digits_predict`,
:mod:`.digit_image` a picture made into an 8x8 digit, :mod:`.digits_figures`) or in the
library itself.
"""
