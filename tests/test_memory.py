"""The memory budget holds: measured peak memory, per-thread budgets, failing early.

* Peak resident memory (VmHWM, in a fresh process per geometry) of a forward + backward
  stays within budget + outputs (the inputs exist before the measurement starts), over
  geometries whose temporaries differ: F >> C*K (the product dominates the columns),
  C*K >> F (the columns dominate), 1x1, depthwise, stride 3, transposed.
* The same bound, exactly, through tracemalloc (NumPy reports every array it allocates).
* A budget set by ``with memory_budget(...)`` holds in its own thread only (8 threads).
* One sample that cannot fit raises MemoryError naming the size before anything is
  allocated; a backward whose dw cannot fit fails before computing dx.
* nn convolution layers keep their forward columns only within the budget, and free them.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import convgrad as cg
from convgrad import memory, nn
from convgrad.engine import fast

# (name, x shape, w shape, keywords, transposed, budget)
GEOMETRIES = [
    ("F>>CK", (8, 1, 32, 32), (512, 1, 2, 1), {}, False, 2**20),
    ("CK>>F", (4, 128, 12, 12), (2, 128, 5, 5), {"padding": 2}, False, 8 * 2**20),
    ("1x1", (16, 64, 16, 16), (32, 64, 1, 1), {}, False, 2**20),
    ("depthwise", (8, 64, 32, 32), (64, 1, 3, 3), {"padding": 1, "groups": 64}, False,
     8 * 2**20),
    ("stride3", (8, 16, 45, 45), (32, 16, 4, 4), {"stride": 3, "padding": 1}, False, 2**20),
    ("transposed", (8, 32, 16, 16), (32, 16, 3, 3),
     {"stride": 2, "padding": 1, "output_padding": 1}, True, 2**20),
]
IDS = [g[0] for g in GEOMETRIES]

# Resident memory moves in pages and through the allocator's own bookkeeping (freed
# blocks kept for reuse): the RSS bound allows this much beyond budget + outputs.
RSS_SLACK = 3 * 2**20

_PROBE = r"""
import json, sys
import numpy as np
import convgrad as cg

def peak():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

spec = json.loads(sys.argv[1])
forward = cg.conv_transpose2d if spec["transposed"] else cg.conv2d
backward = cg.conv_transpose2d_backward if spec["transposed"] else cg.conv2d_backward
kw = spec["kw"]
# one-time setup (BLAS buffers, lazy imports) is not the geometry's footprint
backward(*[np.ones(s) for s in spec["warm"]], **kw)
rng = np.random.default_rng(0)
x, w = rng.standard_normal(spec["x"]), rng.standard_normal(spec["w"])
b = rng.standard_normal(spec["f"])
dy = rng.standard_normal(spec["y"])
before = peak()
with cg.memory_budget(spec["budget"]):
    y = forward(x, w, b, **kw)
    dx, dw, db = backward(dy, x, w, b, **kw)
print(json.dumps({"growth": peak() - before,
                  "outputs": y.nbytes + dx.nbytes + dw.nbytes + db.nbytes}))
"""


def _arrays(x_shape, w_shape, kw, transposed, seed=0):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    f = w_shape[1] * kw.get("groups", 1) if transposed else w_shape[0]
    b = rng.standard_normal(f)
    forward = cg.conv_transpose2d if transposed else cg.conv2d
    y_shape = forward(x[:1], w, **kw).shape
    dy = rng.standard_normal((x_shape[0],) + y_shape[1:])
    return x, w, b, dy


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmHWM is Linux's")
@pytest.mark.parametrize("name,x_shape,w_shape,kw,transposed,budget", GEOMETRIES, ids=IDS)
def test_peak_resident_memory_stays_within_budget_and_outputs(name, x_shape, w_shape, kw,
                                                              transposed, budget):
    x, w, b, dy = _arrays(x_shape, w_shape, kw, transposed)
    warm = [(1,) + dy.shape[1:], (1,) + x.shape[1:], w.shape]
    spec = dict(x=x_shape, w=w_shape, f=len(b), y=dy.shape, kw=kw, transposed=transposed,
                budget=budget, warm=warm)
    out = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(spec)],
                         capture_output=True, text=True, env=dict(os.environ), check=True)
    result = json.loads(out.stdout)
    assert result["growth"] <= budget + result["outputs"] + RSS_SLACK, result


@pytest.mark.parametrize("name,x_shape,w_shape,kw,transposed,budget", GEOMETRIES, ids=IDS)
def test_traced_scratch_stays_within_budget(name, x_shape, w_shape, kw, transposed, budget):
    """tracemalloc sees every NumPy allocation: the peak beyond the outputs is scratch."""
    x, w, b, dy = _arrays(x_shape, w_shape, kw, transposed)
    forward = cg.conv_transpose2d if transposed else cg.conv2d
    backward = cg.conv_transpose2d_backward if transposed else cg.conv2d_backward
    tracemalloc.start()
    try:
        with cg.memory_budget(budget):
            start = tracemalloc.get_traced_memory()[0]
            y = forward(x, w, b, **kw)
            forward_peak = tracemalloc.get_traced_memory()[1] - start
            tracemalloc.reset_peak()
            start = tracemalloc.get_traced_memory()[0]
            dx, dw, db = backward(dy, x, w, b, **kw)
            backward_peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    small = 64 * 1024                          # Python objects, views, shape tuples
    assert forward_peak <= budget + y.nbytes + small
    assert backward_peak <= budget + dx.nbytes + dw.nbytes + db.nbytes + small


def test_the_product_before_its_copy_into_y_is_counted():
    """Issue 12's case: F >> C*K, where the product (F x n*P, 4 MiB a sample) dwarfs the
    columns (16 KiB a sample): counting the columns alone would take all 4 samples at once."""
    x, w = np.zeros((4, 1, 32, 32)), np.zeros((512, 1, 2, 1))
    tracemalloc.start()
    try:
        with cg.memory_budget("1M"):
            start = tracemalloc.get_traced_memory()[0]
            y = cg.conv2d(x, w)
            peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak <= 2**20 + y.nbytes + 64 * 1024


def test_one_sample_that_cannot_fit_fails_before_allocating():
    x, w = np.zeros((4, 64, 32, 32)), np.zeros((8, 64, 3, 3))
    tracemalloc.start()
    try:
        with cg.memory_budget("64K"), pytest.raises(
                MemoryError, match=r"the forward pass needs 4\.6 MiB .* budget of 64\.0 KiB"):
            cg.conv2d(x, w, padding=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024                    # neither y nor any column was allocated


@pytest.mark.parametrize("transposed", [False, True], ids=["conv", "transposed"])
def test_a_weight_gradient_that_cannot_fit_fails_before_dx(monkeypatch, transposed):
    """dx fits (C*K rows, a few KiB a sample) but dw's partial sums (3 x w, 3.4 MiB) do not."""
    x, w = np.zeros((2, 64, 8, 8)), np.zeros((256, 64, 3, 3))
    calls = []
    for name in ("grad_input", "forward", "grad_weight"):
        original = getattr(fast, name)
        monkeypatch.setattr(fast, name, lambda *a, _f=original, _n=name, **k:
                            calls.append(_n) or _f(*a, **k))
    with cg.memory_budget("1M"), pytest.raises(MemoryError, match="the weight gradient"):
        if transposed:                         # x (N, C_in=256, ...), w (256, 64, 3, 3)
            cg.conv_transpose2d_backward(np.zeros((2, 64, 15, 15)), np.zeros((2, 256, 8, 8)),
                                         w, stride=2, padding=1)
        else:
            cg.conv2d_backward(np.zeros((2, 256, 4, 4)), x, w, stride=2, padding=1)
    assert calls == []


@pytest.mark.parametrize("value", [np.int64(2**20), np.int32(4096), np.uint16(1000)])
def test_numpy_integers_are_budgets(value):
    before = cg.set_memory_budget(value)
    try:
        assert cg.get_memory_budget() == int(value)
        assert type(cg.get_memory_budget()) is int
        with cg.memory_budget(value * 2):
            assert cg.get_memory_budget() == 2 * int(value)
    finally:
        cg.set_memory_budget(before)


def test_budget_blocks_hold_per_thread():
    """8 threads, each nesting its own budgets, each conv call seeing only its own."""
    x, w = np.ones((2, 3, 8, 8)), np.ones((4, 3, 3, 3))
    expected = cg.conv2d(x, w, padding=1)
    need = (27 * 64 + 4 * 64) * 8                  # one sample: columns and product
    barrier = threading.Barrier(8)
    failures = []

    def worker(i):
        fits = i % 2 == 0
        budget = need + i if fits else need - 1 - i
        try:
            barrier.wait()
            for _ in range(40):
                with cg.memory_budget(budget):
                    with cg.memory_budget(10**9 + i):
                        assert cg.get_memory_budget() == 10**9 + i
                    assert cg.get_memory_budget() == budget
                    if fits:
                        np.testing.assert_array_equal(cg.conv2d(x, w, padding=1), expected)
                    else:
                        with pytest.raises(MemoryError):
                            cg.conv2d(x, w, padding=1)
        except BaseException as error:  # noqa: BLE001  (reported by the main thread)
            failures.append((i, error))

    default = cg.get_memory_budget()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    assert cg.get_memory_budget() == default


def test_set_memory_budget_sets_the_default_other_threads_see():
    before = cg.set_memory_budget("3M")
    try:
        seen = []
        thread = threading.Thread(target=lambda: seen.append(cg.get_memory_budget()))
        with cg.memory_budget("5M"):           # this thread's block only
            thread.start()
            thread.join()
            assert cg.get_memory_budget() == 5 * 2**20
        assert seen == [3 * 2**20]
    finally:
        cg.set_memory_budget(before)


# ----------------------------------------------------------------------------------------
# Columns kept by nn layers


def _layer_and_data(dtype=np.float64, seed=0, **kw):
    rng = np.random.default_rng(seed)
    layer = nn.Conv2d(3, 8, 3, dtype=dtype, rng=seed, **kw)
    x = rng.standard_normal((4, 3, 10, 9)).astype(dtype)
    return layer, x, rng


@pytest.mark.parametrize("kw", [dict(padding=1), dict(stride=2, padding=(1, 0)),
                                dict(dilation=2, padding="same")])
def test_kept_columns_give_the_functional_gradients_and_are_freed(kw):
    """The kept columns give the functional's gradients; after the backward pass only
    their buffer stays (the spare, still counted), which the next forward pass writes
    into; eval mode frees it."""
    layer, x, rng = _layer_and_data(**kw)
    for step in range(2):
        y = layer.forward(x)
        kept = layer._columns._kept.array
        assert layer._columns.nbytes > 0 and memory.kept_bytes() == layer._columns.nbytes
        if step == 1:
            assert kept is spare                # the same memory, written again
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        assert layer._columns.nbytes == 0
        spare = layer._columns._spare.array
        assert spare is kept and memory.kept_bytes() == spare.nbytes
        edx, edw, edb = cg.conv2d_backward(dy, x, layer.weight.data, layer.bias.data, **kw)
        np.testing.assert_array_equal(dx, edx)
        np.testing.assert_array_equal(layer.weight.grad, edw)
        np.testing.assert_array_equal(layer.bias.grad, edb)
        layer.zero_grad()
    layer.eval()
    layer.forward(x)
    assert memory.kept_bytes() == 0


def test_spare_buffers_are_bounded_copied_empty_and_given_up_for_room():
    """All layers' spares together stay within SPARE_MAX_BYTES; a copy of a layer (as
    Dask's replicas make) gets an empty cache and leaves the accounting intact; a call
    that needs the room takes it from the spares too."""
    import copy
    from convgrad.engine import columns
    layers = [_layer_and_data(padding=1, seed=i)[0] for i in range(3)]
    x = np.random.default_rng(0).standard_normal((4, 3, 10, 9))
    per_layer = 4 * 27 * 90 * 8
    try:
        columns.SPARE_MAX_BYTES, before = 2 * per_layer, columns.SPARE_MAX_BYTES
        for layer in layers:
            layer.backward(np.ones(layer.forward(x).shape))
        assert columns.spare_bytes() == 2 * per_layer == memory.kept_bytes()
        assert layers[2]._columns._spare is None
    finally:
        columns.SPARE_MAX_BYTES = before
    twin = copy.deepcopy(layers[0])
    assert twin._columns._spare is None and twin._columns._kept is None
    del twin
    assert memory.kept_bytes() == 2 * per_layer
    with cg.memory_budget(per_layer + 100):   # one sample of this call needs more
        cg.conv2d(x, np.ones((8, 3, 3, 3)), padding=1)
    assert memory.kept_bytes() == 0 and columns.spare_bytes() == 0
    y = layers[0].forward(x)                   # and the layer works on
    dy = np.ones(y.shape)
    layers[0].zero_grad()
    layers[0].backward(dy)
    _, edw, _ = cg.conv2d_backward(dy, x, layers[0].weight.data, layers[0].bias.data,
                                   padding=1)
    np.testing.assert_array_equal(layers[0].weight.grad, edw)
    for layer in layers:
        layer.eval()
        layer.forward(x)


def test_eval_mode_and_transposed_layers_keep_nothing():
    layer, x, _ = _layer_and_data(padding=1)
    layer.eval()
    layer.forward(x)
    assert memory.kept_bytes() == 0
    up = nn.ConvTranspose2d(3, 2, 3, stride=2, rng=0, dtype=np.float64)
    up.forward(x)
    assert memory.kept_bytes() == 0


def test_columns_are_kept_only_within_the_budget():
    layer, x, rng = _layer_and_data(padding=1)
    columns = 4 * 27 * 90 * 8
    with cg.memory_budget(columns - 1):        # the columns alone do not fit
        y = layer.forward(x)
        assert memory.kept_bytes() == 0
        dx = layer.backward(rng.standard_normal(y.shape))
    expected = cg.conv2d_backward(rng.standard_normal(y.shape) * 0 + 1, x,
                                  layer.weight.data, padding=1)
    assert dx.shape == expected[0].shape


def test_kept_columns_are_released_when_a_call_needs_the_room():
    layer, x, rng = _layer_and_data(padding=1)
    y = layer.forward(x)
    kept = memory.kept_bytes()
    assert kept > 0
    with cg.memory_budget(kept + 100):        # another call's sample needs more than is left
        cg.conv2d(x, np.ones((8, 3, 3, 3)), padding=1)
    assert memory.kept_bytes() == 0
    dy = rng.standard_normal(y.shape)
    layer.backward(dy)                         # the weight gradient lowers x again
    _, edw, _ = cg.conv2d_backward(dy, x, layer.weight.data, layer.bias.data, padding=1)
    np.testing.assert_array_equal(layer.weight.grad, edw)


def test_a_layer_called_on_another_input_does_not_use_stale_columns():
    layer, x, rng = _layer_and_data(padding=1)
    layer.forward(x)
    x2 = rng.standard_normal(x.shape)
    y = layer.forward(x2)
    dy = rng.standard_normal(y.shape)
    layer.backward(dy)
    _, edw, _ = cg.conv2d_backward(dy, x2, layer.weight.data, layer.bias.data, padding=1)
    np.testing.assert_array_equal(layer.weight.grad, edw)
