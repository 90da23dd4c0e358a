"""The bench's probe of the password hash as the server runs it (``bench/run.py`` only; never production).

``bench/run.py`` starts our server with this directory on ``PYTHONPATH`` and ``BENCH_HASH_LOG`` naming a
directory: every Python process of the server (the master, each worker) then times each
``argon2.PasswordHasher.verify`` with its thread's CPU clock and appends one line per verify,
``<milliseconds>``, to ``<pid>.log`` there. The bench subtracts the mean of the verifies made during the
measured whole-flow run, instead of a hash timed in its own process at another moment: on this
machine the hash alone moves by a sixth between such moments, as much as the rest of the flow.
"""

import os

if os.environ.get("BENCH_HASH_LOG"):
    try:
        import argon2
    except ImportError:  # not the provider's interpreter
        pass
    else:
        import time

        _verify = argon2.PasswordHasher.verify
        _logs: dict[int, object] = {}

        def _timed_verify(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.thread_time()
            try:
                return _verify(self, *args, **kwargs)
            finally:
                spent = (time.thread_time() - start) * 1000.0
                pid = os.getpid()  # a forked worker writes its own file
                log = _logs.get(pid)
                if log is None:
                    log = _logs[pid] = open(  # noqa: SIM115 - kept open for the process's life
                        os.path.join(os.environ["BENCH_HASH_LOG"], f"{pid}.log"), "a", buffering=1)
                log.write(f"{spent:.4f}\n")

        argon2.PasswordHasher.verify = _timed_verify
