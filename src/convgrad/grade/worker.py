"""The worker process that runs the user's code: ``python -m convgrad.grade.worker IN OUT``.

It reads requests from file descriptor IN and writes replies to OUT (pickled by
:mod:`multiprocessing.connection`), so that whatever the user's code prints cannot mix
with them. The first request loads the file; each later one calls a method of
:class:`~.calling.Session`. The grader kills and restarts this process when a call does
not return in time.
"""
from __future__ import annotations

import os
import sys
from multiprocessing.connection import Connection


def _load(path, forward, backward, api):
    from .calling import Session
    from .loading import LoadError, import_file, pick_functions
    try:
        module = import_file(path)
        f, b, names = pick_functions(module, forward, backward, api, os.path.basename(path))
    except LoadError as error:
        return None, ("error", str(error))
    return Session(f, b, api, names), ("ok", names)


def main(argv) -> int:
    requests = Connection(int(argv[1]), writable=False)
    replies = Connection(int(argv[2]), readable=False)
    session = None
    while True:
        try:
            method, args = requests.recv()
        except (EOFError, OSError):
            return 0
        if method == "load":
            session, reply = _load(*args)
        else:
            reply = getattr(session, method)(*args)
        replies.send(reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
