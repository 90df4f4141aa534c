"""The applications on top of the library: the command line and the work behind its commands.

:mod:`.cli` parses the command line; each command lives in :mod:`.commands`; the work is in
:mod:`.gradient_check`, :mod:`.bench`, :mod:`.digits` or in the library itself.
"""
