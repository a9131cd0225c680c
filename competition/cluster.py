"""Cross-validation on a Dask distributed cluster: joblib's dask backend, connected and checked first.

``ships cv --scheduler tcp://HOST:PORT`` (and ``ships baseline run``) connects with
:func:`connect_scheduler`, before any work, then runs inside :func:`dask_backend`: every joblib
call made there (the folds of :func:`competition.cv.cross_validate_model`, a baseline's inner
search) runs on the cluster's workers instead of local processes, with the same numbers.
The scheduler and its workers need the same software as the caller (this package installed).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from competition.errors import ParameterError

__all__ = ["connect_scheduler", "dask_backend"]


def connect_scheduler(address: str, *, timeout: float = 5.0, name: str = "scheduler"):
    """A ``distributed.Client`` of the Dask scheduler at ``address``, with at least one worker.

    Raises
    ------
    ParameterError
        Before any work: for an address that is not one (``tcp://HOST:PORT``), when no scheduler
        answers there within ``timeout`` seconds, or when the scheduler has no worker.
    """
    from distributed import Client
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    try:
        scheme, location = parse_address(address)
        get_backend(scheme)
        if scheme in ("tcp", "tls", "ws", "wss"):
            parse_host_port(location)
    except ValueError as exc:
        raise ParameterError(f"{name} {address!r} is not the address of a Dask scheduler ({exc}); expected "
                             "tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786") from exc
    fix = (f"start one with `dask scheduler` and its workers with `dask worker {address}`, or leave out {name} "
           "to run on this machine")
    try:
        client = Client(address, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ParameterError(f"{name} {address!r}: no Dask scheduler answered within {timeout:g} s ({exc}); expected "
                             f"the address of a running scheduler, e.g. tcp://HOST:8786; {fix}") from exc
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError as exc:
        client.close()
        raise ParameterError(f"{name} {address!r}: the Dask scheduler has no worker after {timeout:g} s; "
                             f"{fix}") from exc
    return client


@contextmanager
def dask_backend(client) -> Iterator[int]:
    """Within it, joblib (the folds, a baseline's inner search) runs on the Dask cluster of ``client``.

    Yields the number of worker threads of the cluster.  Pass ``n_jobs=-1`` to
    :func:`cross_validate_model` to use all of them.
    """
    from joblib import parallel_config

    with parallel_config(backend="dask", n_jobs=-1, client=client, wait_for_workers_timeout=30):
        yield sum(client.nthreads().values())
