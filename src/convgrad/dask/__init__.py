"""convgrad.dask: convolution and training on Dask, for data that outgrows one machine.

    import dask.array as da, convgrad.dask
    x = da.random.random((10_000, 3, 64, 64), chunks=(500, 3, 64, 64))
    y = convgrad.dask.conv2d(x, w, b, stride=2, padding="same")         # lazy
    dx, dw, db = convgrad.dask.conv2d_backward(dy, x, w, b, stride=2, padding="same")

    from distributed import Client
    model_step = convgrad.dask.DataParallel(model, loss_fn, client=Client("tcp://..."))
    loss, logits = model_step(x_batch, labels)     # gradients summed into each p.grad
    optimizer.step()                               # on the client

The NumPy engine does the arithmetic on every block; this package only cuts the work into
tasks: batch chunks (:mod:`.batch`), spatial chunks with halos (:mod:`.spatial`),
data-parallel training steps (:mod:`.data_parallel`, :mod:`.replica`,
:mod:`.sync_batchnorm`), clusters named on the command line (:mod:`.cluster`), and a
benchmark (``python -m convgrad.dask.bench``). Needs the ``dask`` extra:
``pip install 'convgrad[dask]'`` (dask[array] and distributed).
"""
from .._optional import require

require("dask.array", "dask", "convgrad.dask")

from .functional import (conv1d, conv1d_backward, conv2d, conv2d_backward,  # noqa: E402
                         conv3d, conv3d_backward, conv_transpose1d, conv_transpose1d_backward,
                         conv_transpose2d, conv_transpose2d_backward, conv_transpose3d,
                         conv_transpose3d_backward)
from .cluster import ClusterError, connect  # noqa: E402
from .data_parallel import DataParallel  # noqa: E402

__all__ = [
    "conv1d", "conv2d", "conv3d",
    "conv1d_backward", "conv2d_backward", "conv3d_backward",
    "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "conv_transpose1d_backward", "conv_transpose2d_backward", "conv_transpose3d_backward",
    "DataParallel", "ClusterError", "connect",
]
