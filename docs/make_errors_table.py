"""Regenerate the table of docs/errors.md by running every bad call in both libraries.

    python docs/make_errors_table.py      (needs PyTorch; run from the repository root)

The rows come from tests/test_errors.py (ids and calls); the descriptions in the second
column are kept from the current table; both message columns are produced by running
the call in convgrad and the same mistake in torch.nn.functional.
"""
import re
import sys
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
warnings.simplefilter("ignore")
import test_errors as T  # noqa: E402
F = torch.nn.functional
doc = (ROOT / "docs" / "errors.md").read_text()
desc = dict(re.findall(r"^\| `([A-Za-z0-9-]+)` \| (.*?) \|", doc, flags=re.M))
x = torch.zeros(2, 3, 8, 8); w = torch.zeros(4, 3, 3, 3)
xt = torch.zeros(2, 3, 4, 4); wt = torch.zeros(3, 2, 3, 3)
def c(**k):
    a = dict(input=x, weight=w); a.update(k); return lambda: F.conv2d(**a)
def ct(**k):
    a = dict(input=xt, weight=wt); a.update(k); return lambda: F.conv_transpose2d(**a)
def backward(dy):
    def run():
        y = F.conv2d(x.clone().requires_grad_(), w)
        y.backward(dy)
    return run
def params():
    return [torch.nn.Parameter(torch.zeros(2))]
def set_lr(opt, lr):
    opt.param_groups[0]["lr"] = lr
TORCH = {
 "x-ndim": c(input=torch.zeros(8, 8)), "w-ndim": c(weight=torch.zeros(4, 3, 3)),
 "conv1d-given-2d": lambda: F.conv1d(x, w), "channel-mismatch": c(weight=torch.zeros(4, 2, 3, 3)),
 "groups-not-dividing-C": lambda: F.conv2d(torch.zeros(2, 4, 8, 8), torch.zeros(6, 2, 3, 3), groups=3),
 "groups-not-dividing-F": lambda: F.conv2d(torch.zeros(2, 4, 8, 8), torch.zeros(6, 1, 3, 3), groups=4),
 "kernel-larger-than-input": lambda: F.conv2d(torch.zeros(1, 3, 4, 4), w, dilation=2),
 "stride-zero": c(stride=0), "stride-negative": c(stride=(1, -2)), "stride-float": c(stride=1.5),
 "stride-bool": c(stride=True), "stride-length": c(stride=(1, 2, 3)), "stride-string": c(stride="2"),
 "dilation-zero": c(dilation=(0, 1)), "dilation-float": c(dilation=(1, 2.0)),
 "dilation-bool": c(dilation=False), "dilation-negative": c(dilation=-1), "dilation-length": c(dilation=(1,)),
 "groups-zero": c(groups=0), "groups-float": c(groups=1.0), "groups-bool": c(groups=True),
 "padding-negative": c(padding=-1), "padding-negative-pair": c(padding=((1, -1), (0, 0))),
 "padding-unknown-string": c(padding="full"), "padding-wrong-case": c(padding="SAME"),
 "padding-length": c(padding=(1, 2, 3)), "padding-bad-pair": c(padding=((1, 2, 3), (0, 0))),
 "padding-float": c(padding=1.5),
 "padding-1d-flat-pair": lambda: F.conv1d(torch.zeros(1, 1, 5), torch.zeros(1, 1, 2), padding=(1, 2)),
 "transpose-same-with-output-padding": ct(padding="same", stride=2, output_padding=1),
 "transpose-output-padding-too-big": ct(stride=2, output_padding=2),
 "transpose-output-padding-pair": ct(stride=2, output_padding=((0, 1), (0, 0))),
 "transpose-channel-mismatch": ct(weight=torch.zeros(2, 2, 3, 3)),
 "transpose-output-too-small": ct(padding=4),
 "bias-shape": c(bias=torch.zeros(5)), "bias-2d": c(bias=torch.zeros(4, 1)),
 "bias-complex": c(bias=torch.zeros(4, dtype=torch.complex64)),
 "transpose-bias-shape": ct(bias=torch.zeros(3)),
 "dy-shape": backward(torch.zeros(2, 4, 5, 5)),
 "dy-dtype": backward(torch.zeros(2, 4, 6, 6, dtype=torch.complex64)),
 "dy-none": backward(None),
 "x-string": c(input="image"), "x-none": c(input=None), "x-mixed-list": c(input=[[[[1.0, "a"]]]]),
 "x-ragged-list": c(input=[[[[1.0, 2.0], [1.0]]]]),
 "x-complex": c(input=x.to(torch.complex128)), "x-bool": c(input=x.bool()),
 "x-empty-spatial": c(input=torch.zeros(2, 3, 0, 8)),
 "x-no-channels": lambda: F.conv2d(torch.zeros(2, 0, 8, 8), torch.zeros(4, 0, 3, 3)),
 "w-no-filters": c(weight=torch.zeros(0, 3, 3, 3)), "w-empty-kernel": c(weight=torch.zeros(4, 3, 0, 3)),
 "x-tensor-requires-grad": c(input=torch.zeros(2, 3, 8, 8, requires_grad=True)),
 "layer-kernel-too-large": lambda: torch.nn.Conv2d(3, 4, 2**40),
 "layer-dilation-too-large": lambda: torch.nn.Conv2d(3, 4, 3, dilation=2**62),
 "linear-too-large": lambda: torch.nn.Linear(2**40, 2**40),
 "batchnorm-eps-inf": lambda: torch.nn.BatchNorm2d(3, eps=float("inf")),
 "optimizer-lr-inf": lambda: torch.optim.SGD(params(), lr=float("inf")),
 "optimizer-lr-nan": lambda: torch.optim.Adam(params(), lr=float("nan")),
 "optimizer-lr-negative": lambda: torch.optim.SGD(params(), lr=-0.1),
 "optimizer-lr-set-nan": lambda: set_lr(torch.optim.SGD(params(), lr=0.1), float("nan")),
 "optimizer-momentum-nan": lambda: torch.optim.SGD(params(), lr=0.1, momentum=float("nan")),
}
NO_EQUIVALENT = {"x-object": "no object tensors", "x-longdouble": "no float128 tensors",
                 "algorithm-unknown": "no such argument", "x-masked": "no masked arrays",
                 "train-loss-nan": "no training loop"}
NO_EQUIVALENT.update({id_: "torch.load reads its own format" for id_, *_ in T.ERRORS
                      if id_.startswith("model-file-")})
def short(text, n=170):
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 3].rstrip() + "..."
rows = []
for id_, call, exc, frags in T.ERRORS:
    try:
        call(); ours = "NO ERROR"
    except Exception as e:
        ours = f"{type(e).__name__}: `{short(e)}`"
    if id_ in TORCH:
        try:
            r = TORCH[id_]()
            theirs = "**no error**" + (f": returns shape {tuple(r.shape)}"
                                       if hasattr(r, "shape") else "")
        except Exception as e:
            theirs = f"{type(e).__name__}: `{short(str(e).splitlines()[0], 140)}`"
    else:
        theirs = NO_EQUIVALENT.get(id_, "-")
    rows.append(f"| `{id_}` | {desc.get(id_, '?')} | {ours} | {theirs} |")
table = "\n".join(rows)
start = doc.index("| id | bad input")
header_end = doc.index("\n", doc.index("|---|", start)) + 1
end = doc.index("\n\n", header_end)
doc = doc[:header_end] + table + doc[end:]
(ROOT / "docs" / "errors.md").write_text(doc)
print(f"{len(rows)} rows written to docs/errors.md")
