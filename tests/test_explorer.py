"""The HTML explorer (convgrad explain --html) in a real headless browser.

Over 30+ geometries, every y/dx/dw/db cell's terms (``window.convgrad.terms``), formula
and hover highlights are compared with two oracles built independently of the page:
the structure of :func:`convgrad.explain.derive` (SymPy) and the fast engine's Jacobian
(convgrad's conv / conv_transpose on unit inputs and unit filters). The page's numbers are
compared with convgrad's, bad geometries must show convgrad's own message, and the page
must log no console error.

The browser is Chromium from the OS packages (``apt-get install chromium chromium-driver``)
driven by Selenium (the ``test`` extra). Without them these tests skip, naming what to
install; with CI=true they fail instead.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

import convgrad as cg
from convgrad.explain.case import case_geometry
from convgrad.explain.explorer import check_limits, html

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,1000"]


def _unavailable(why: str):
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI=true but the browser tests cannot run: {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("the explorer's browser tests need selenium: pip install 'convgrad[test]'")
    binary = next((b for b in CHROMIUM if os.path.exists(b)), None) or shutil.which("chromium")
    if binary is None or not os.path.exists(CHROMEDRIVER):
        _unavailable("the explorer's browser tests need Chromium and its driver: "
                     "apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="convgrad-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def page(browser, tmp_path_factory):
    """The explorer written by convgrad.explain.html (default case), opened from disk."""
    path = tmp_path_factory.mktemp("explorer") / "explorer.html"
    html(path)
    browser.get(path.as_uri())
    return browser


def _console_errors(driver) -> list:
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


# ----------------------------------------------------------------------------------------
# The geometries: (nd) x, w, stride, padding, dilation, transposed, output_padding

def G(x, w, stride=1, padding=0, dilation=1, transposed=False, output_padding=None):
    nd = len(x)
    per = (lambda v: [v] * nd if isinstance(v, int) else list(v))
    if isinstance(padding, int):
        padding = [[padding, padding]] * nd
    g = {"nd": nd, "x": list(x), "w": list(w), "stride": per(stride), "padding": padding,
         "dilation": per(dilation), "transposed": transposed}
    if output_padding is not None:
        g["output_padding"] = per(output_padding)
    return g


GEOMETRIES = [
    G([4], [2]), G([5], [3], stride=2), G([7], [3], stride=3), G([8], [2], stride=3, padding=1),
    G([6], [3], padding=[[2, 0]]), G([6], [3], stride=2, padding=[[0, 2]], dilation=2),
    G([9], [3], dilation=2), G([6], [3], stride=2, padding="same"), G([7], [4], padding="same"),
    G([5], [3], padding="valid"), G([4], [1], stride=2), G([3], [3], padding=[[1, 3]]),
    G([3], [3], stride=2, padding=1, transposed=True, output_padding=1),
    G([4], [2], stride=3, transposed=True, output_padding=2),
    G([3], [3], stride=2, dilation=2, padding=[[1, 2]], transposed=True, output_padding=1),
    G([3], [2], stride=1, dilation=3, transposed=True, output_padding=2),
    G([4], [3], stride=2, padding="same", transposed=True),
    G([3, 3], [2, 2]), G([4, 4], [2, 2], stride=2, padding=1), G([5, 5], [3, 3], stride=2),
    G([6, 5], [3, 2], stride=[3, 2], padding=[[1, 0], [0, 2]]),
    G([5, 6], [2, 3], dilation=2, padding=[[0, 1], [2, 1]]),
    G([6, 6], [3, 3], stride=2, padding="same"), G([5, 4], [3, 2], stride=[1, 3], padding="same"),
    G([7, 5], [3, 3], stride=3, dilation=[2, 1], padding=[[2, 2], [0, 1]]),
    G([4, 4], [1, 1], stride=2), G([3, 4], [3, 4], padding="valid"),
    G([3, 3], [3, 3], stride=2, padding=1, transposed=True, output_padding=1),
    G([2, 3], [2, 3], stride=[3, 2], transposed=True, output_padding=[2, 1]),
    G([3, 2], [3, 2], stride=2, dilation=2, padding=[[1, 0], [0, 1]], transposed=True,
      output_padding=[1, 0]),
    G([2, 3], [3, 3], stride=2, padding="same", transposed=True),
    G([12, 12], [3, 3], padding=1),
]


def _args(g) -> dict:
    """The Python call for a page geometry."""
    padding = g["padding"]
    if isinstance(padding, list):
        padding = tuple(tuple(p) if isinstance(p, list) else p for p in padding)
    out = dict(stride=tuple(g["stride"]), padding=padding, dilation=tuple(g["dilation"]),
               transposed=g["transposed"])
    if "output_padding" in g:
        out["output_padding"] = tuple(g["output_padding"])
    return out


def _key(array, index) -> str:
    return f"{array}:{','.join(str(i) for i in index)}"


def _engine_structure(g):
    """From the fast engine alone: term (array, index) sets of every y/dx/dw/db cell.

    conv (or conv_transpose) of unit inputs e_j with unit filters e_k, in one batched call:
    T[j, k, i] = 1 exactly when w_k * x_j is a term of y_i (the Jacobian dy/dx as a
    function of w). Then y_i's terms are {(w_k, x_j)}, dx_j's {(w_k, dy_i)}, dw_k's
    {(x_j, dy_i)} over the same triples (the chain rule), and db's every dy_i.
    """
    args = _args(g)
    nd, xs, ws = g["nd"], tuple(g["x"]), tuple(g["w"])
    px, pk = int(np.prod(xs)), int(np.prod(ws))
    units_x = np.eye(px).reshape((px, 1) + xs)                     # (P, 1, *x)
    if args.pop("transposed"):
        units_w = np.eye(pk).reshape((1, pk) + ws)                 # (C_in=1, C_out=K, *k)
        y = getattr(cg, f"conv_transpose{nd}d")(units_x, units_w, algorithm="fast", **args)
    else:
        args.pop("output_padding", None)
        units_w = np.eye(pk).reshape((pk, 1) + ws)                 # (F=K, 1, *k)
        y = getattr(cg, f"conv{nd}d")(units_x, units_w, algorithm="fast", **args)
    ys = y.shape[2:]
    T = y.reshape(px, pk, -1)                                      # (P, K, prod(y))
    xi, wi, yi = list(np.ndindex(*xs)), list(np.ndindex(*ws)), list(np.ndindex(*ys))
    terms = {}
    for j, k, i in zip(*np.nonzero(np.abs(T - 1) < 1e-12)):
        terms.setdefault(_key("y", yi[i]), set()).add((("w", wi[k]), ("x", xi[j])))
        terms.setdefault(_key("dx", xi[j]), set()).add((("w", wi[k]), ("dy", yi[i])))
        terms.setdefault(_key("dw", wi[k]), set()).add((("x", xi[j]), ("dy", yi[i])))
    assert np.all((np.abs(T) < 1e-12) | (np.abs(T - 1) < 1e-12))  # a 0/1 structure
    terms["db:0"] = {(("dy", i),) for i in yi}
    return terms, ys


# One script per geometry: set it, read every cell's terms, hover each cell (a real
# mouseover event, dispatched) and read what the page highlights and the formula it writes.
SWEEP = """
const g = arguments[0];
const result = window.convgrad.set(g);
if (!result.ok) return {error: result.error};
const cells = Array.from(document.querySelectorAll('[data-array]'));
const out = [];
for (const c of cells) {
  c.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
  const related = Array.from(document.querySelectorAll('[data-related="true"]'))
    .map(e => e.dataset.array + ':' + e.dataset.index);
  out.push({array: c.dataset.array, index: c.dataset.index,
            terms: window.convgrad.terms(c.dataset.array, c.dataset.index),
            related: related, selected: c.dataset.selected === 'true',
            formula: document.getElementById('formula').dataset.formula || null});
}
return {cells: out, geometry: window.convgrad.geometry()};
"""


def _as_terms(page_terms) -> list:
    return [tuple((a, tuple(i)) for a, i in term) for term in page_terms]


@pytest.fixture(scope="module")
def sweep(page):
    """Every geometry swept once in the page: {index in GEOMETRIES: the page's answer}."""
    return {n: page.execute_script(SWEEP, g) for n, g in enumerate(GEOMETRIES)}


def test_enough_geometries():
    assert len(GEOMETRIES) >= 30
    kinds = {"stride 3": any(3 in g["stride"] for g in GEOMETRIES),
             "asymmetric": any(isinstance(g["padding"], list) and
                               any(p[0] != p[1] for p in g["padding"]) for g in GEOMETRIES),
             "dilation 2": any(2 in g["dilation"] for g in GEOMETRIES),
             "same stride 2": any(g["padding"] == "same" and 2 in g["stride"] and
                                  not g["transposed"] for g in GEOMETRIES),
             "transposed output_padding": any(g["transposed"] and any(g.get("output_padding", [0]))
                                              for g in GEOMETRIES),
             "1-D": any(g["nd"] == 1 for g in GEOMETRIES),
             "2-D": any(g["nd"] == 2 for g in GEOMETRIES)}
    assert all(kinds.values()), kinds


@pytest.mark.parametrize("n", range(len(GEOMETRIES)))
def test_every_cell_matches_derive_and_the_engine(sweep, n):
    g = GEOMETRIES[n]
    answer = sweep[n]
    assert "error" not in answer, answer.get("error")
    engine, y_size = _engine_structure(g)
    assert tuple(answer["geometry"]["y"]) == y_size
    checked = {"y": 0, "dx": 0, "dw": 0, "db": 0}
    symbolic = max(np.prod(g["x"]), np.prod(y_size)) <= 49     # derive() stays quick
    derivation = None
    if symbolic:
        from convgrad.explain import derive
        derivation = derive(tuple(g["x"]), tuple(g["w"]), **_args(g))
    dependents = {}
    for k, terms in engine.items():
        for term in terms:
            for array, index in term:
                dependents.setdefault(_key(array, index), set()).add(k)
    for cell in answer["cells"]:
        array, index = cell["array"], tuple(int(i) for i in cell["index"].split(","))
        k = _key(array, index)
        terms = _as_terms(cell["terms"])
        assert cell["selected"]
        if array in checked:
            checked[array] += 1
            assert set(terms) == engine.get(k, set()), k             # the engine's Jacobian
            assert len(set(terms)) == len(terms)
            if derivation is not None:
                spot = () if array == "db" else index
                assert terms == list(derivation.terms(array, spot)), k   # structure and order
                assert cell["formula"] == derivation.formula(array, spot), k
        else:
            assert terms == []
        expected = {_key(a, i) for term in terms for a, i in term} | dependents.get(k, set())
        assert set(cell["related"]) == expected, k                   # hover highlights
    x_cells = int(np.prod(g["x"]))
    assert checked["dx"] == x_cells and checked["y"] == int(np.prod(y_size))
    assert checked["dw"] == int(np.prod(g["w"])) and checked["db"] == 1


def test_numbers_match_convgrad(page):
    """The page computes y, dx, dw, db; convgrad computes them from the page's inputs."""
    for g in (GEOMETRIES[3], GEOMETRIES[14], GEOMETRIES[20], GEOMETRIES[29], GEOMETRIES[23]):
        assert page.execute_script("return window.convgrad.set(arguments[0])", g)["ok"]
        page.execute_script("window.convgrad.mode('numbers')")
        v = page.execute_script("return window.convgrad.values()")
        assert v["convgrad"] is None                      # not the embedded case
        geometry = page.execute_script("return window.convgrad.geometry()")
        xs, ws, ys = tuple(geometry["x"]), tuple(geometry["w"]), tuple(geometry["y"])
        x = np.array(v["x"], float).reshape((1, 1) + xs)
        w = np.array(v["w"], float).reshape((1, 1) + ws)
        b, dy = np.array([v["b"]], float), np.array(v["dy"], float).reshape((1, 1) + ys)
        args = _args(g)
        nd = g["nd"]
        if args.pop("transposed"):
            y = getattr(cg, f"conv_transpose{nd}d")(x, w, b, **args)
            dx, dw, db = getattr(cg, f"conv_transpose{nd}d_backward")(dy, x, w, b, **args)
        else:
            y = getattr(cg, f"conv{nd}d")(x, w, b, **args)
            dx, dw, db = getattr(cg, f"conv{nd}d_backward")(dy, x, w, b, **args)
        np.testing.assert_allclose(np.array(v["y"]).reshape(ys), y[0, 0], atol=1e-9)
        np.testing.assert_allclose(np.array(v["dx"]).reshape(xs), dx[0, 0], atol=1e-9)
        np.testing.assert_allclose(np.array(v["dw"]).reshape(ws), dw[0, 0], atol=1e-9)
        assert abs(v["db"] - db[0]) < 1e-9
    page.execute_script("window.convgrad.mode('symbols')")


def test_embedded_values_are_convgrads_and_shown(browser, tmp_path):
    path = tmp_path / "numbers.html"
    html(path, input_size=(4,), kernel_size=(3,), stride=2, padding=1, transposed=True,
         output_padding=1, numbers=True)
    browser.get(path.as_uri())
    v = browser.execute_script("return window.convgrad.values()")
    assert v["convgrad"] is not None
    x, w = np.array(v["x"])[None, None], np.array(v["w"])[None, None]
    b, dy = np.array([v["b"]]), np.array(v["dy"])[None, None]
    kw = dict(stride=2, padding=1, output_padding=1)
    y = cg.conv_transpose1d(x, w, b, **kw)
    dx, dw, db = cg.conv_transpose1d_backward(dy, x, w, b, **kw)
    for name, ours in (("y", y), ("dx", dx), ("dw", dw)):
        np.testing.assert_allclose(v["convgrad"][name], ours[0, 0].ravel(), atol=1e-12)
        np.testing.assert_allclose(v[name], ours[0, 0].ravel(), atol=1e-12)   # the page's own
    assert v["convgrad"]["db"] == pytest.approx(db[0]) == pytest.approx(v["db"])
    summary = browser.find_element("id", "summary")
    assert summary.get_attribute("data-agree") == "true" and "convgrad" in summary.text
    shown = browser.find_elements("css selector", '[data-array="dx"] .cg')
    assert len(shown) == 4                            # convgrad's value beside the page's
    assert not _console_errors(browser)


def _python_message(g) -> str:
    args = _args(g)
    try:
        geometry = case_geometry(tuple(g["x"]), tuple(g["w"]), **args)
        check_limits(geometry, args["transposed"])
    except (ValueError, TypeError) as error:
        return str(error)
    raise AssertionError(f"{g} is a valid geometry")


BAD = [
    G([2], [3]),                                                  # kernel larger than input
    G([4, 4], [3, 3], stride=[0, 1]),
    G([5], [3], dilation=[2.5]),
    G([5], [3], padding=[[1, -1]]),
    G([5], [3], padding="SAME"),
    G([3], [3], stride=2, transposed=True, output_padding=2),     # output_padding >= stride
    G([2], [2], padding=3, transposed=True),                      # output would be < 1
    G([3], [3], stride=2, padding="same", transposed=True, output_padding=1),
    G([13, 4], [3, 3]),                                           # beyond what the page draws
    G([5], [7], dilation=3),
    G([12], [2], stride=3, transposed=True),
    G([4], [2, 2]),
]


@pytest.mark.parametrize("g", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_geometry_shows_convgrads_message(page, g):
    page.execute_script("return window.convgrad.set(arguments[0])", GEOMETRIES[1])
    result = page.execute_script("return window.convgrad.set(arguments[0])", g)
    expected = _python_message(g)
    assert result == {"ok": False, "error": expected}
    box = page.find_element("id", "message")
    assert box.is_displayed() and box.get_attribute("data-message") == expected
    assert box.text == "convgrad explain: " + expected.removeprefix("explain: ")
    assert page.find_elements("css selector", '[data-array="dx"]')   # never a blank grid
    assert page.execute_script("return window.convgrad.set(arguments[0])", GEOMETRIES[1])["ok"]
    assert not page.find_element("id", "message").is_displayed()


def test_controls_keyboard_and_real_hover(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
    page.execute_script("return window.convgrad.set(arguments[0])", GEOMETRIES[19])   # 5x5, s 2
    # a bad value typed into a control: the message, in the page
    stride = page.find_element("id", "s0")
    stride.clear()
    stride.send_keys("0")
    box = page.find_element("id", "message")
    assert box.is_displayed() and "stride must be a positive int" in box.text
    stride.send_keys(Keys.BACKSPACE, "3")
    assert not box.is_displayed()
    assert page.execute_script("return window.convgrad.geometry()")["stride"] == [3, 2]
    # the padding and transposed controls
    Select(page.find_element("id", "padmode")).select_by_value("same")
    # 'same' at stride (3, 2): ceil(5/3) = 2 rows need 1 pixel, after; ceil(5/2) = 3 need 2
    assert page.execute_script("return window.convgrad.geometry()")["padding"] == [[0, 1], [1, 1]]
    page.find_element("id", "transposed").click()
    assert page.execute_script("return window.convgrad.geometry()")["transposed"] is True
    page.find_element("id", "transposed").click()
    # a real mouse hover
    cell = page.find_element("css selector", '[data-array="dw"][data-index="1,1"]')
    ActionChains(page).move_to_element(cell).perform()
    formula = page.find_element("id", "formula").get_attribute("data-formula")
    assert formula.startswith("dw22 = x") and cell.get_attribute("data-selected") == "true"
    assert page.find_elements("css selector", '[data-related="true"][data-array="x"]')
    # keyboard: focus a cell, move with the arrow keys
    first = page.find_element("css selector", '[data-array="dx"][data-index="0,0"]')
    page.execute_script("arguments[0].focus()", first)
    first.send_keys(Keys.ARROW_RIGHT)
    active = page.switch_to.active_element
    assert active.get_attribute("data-index") == "0,1"
    assert page.find_element("id", "formula").get_attribute("data-formula").startswith("dx12 = ")
    active.send_keys(Keys.ARROW_DOWN)
    assert page.switch_to.active_element.get_attribute("data-index") == "1,1"
    assert page.find_elements("css selector", '[data-related="true"][data-array="dy"]')
    # the window of the selected dx cell in the "as a convolution" view
    assert page.find_elements("css selector", '[data-view="dx-A"][data-window="true"]')
    assert not _console_errors(page)


def test_readable_at_12_by_12(page):
    assert page.execute_script("return window.convgrad.set(arguments[0])",
                               G([12, 12], [3, 3], padding=1))["ok"]
    for mode in ("symbols", "numbers"):
        page.execute_script(f"window.convgrad.mode('{mode}')")
        width = page.execute_script("return document.documentElement.scrollWidth")
        assert width <= 1400, f"{mode}: the page is {width} px wide"
        sizes = page.execute_script(
            "return Array.from(document.querySelectorAll('[data-array]')).map("
            "c => parseFloat(getComputedStyle(c).fontSize))")
        assert min(sizes) >= 12
        overflow = page.execute_script(
            "return Array.from(document.querySelectorAll('[data-array]')).filter("
            "c => c.scrollWidth > c.clientWidth + 1).length")
        assert overflow == 0                              # no label cut off
    page.execute_script("window.convgrad.mode('symbols')")


def test_no_console_errors_and_self_contained(page, tmp_path):
    assert not _console_errors(page)
    text = html(tmp_path / "page.html")
    for marker in ("http://", "https://", "<link", " src=", "@import", "url(", "fetch(",
                   "XMLHttpRequest"):
        assert marker not in text, marker
    assert text.count("<script") == 2                 # the data and the inlined code


# The "as a convolution" views: read back from the page's cells, each view is correlated
# here (docs/math.md#the-input-gradient-dx and #the-weight-gradient-dw: stride and dilation
# as the math says, not as the page says) and must give every output cell's terms as the
# engine's Jacobian has them; hovering a cell must outline exactly its window.
VIEWS = """
const result = window.convgrad.set(arguments[0]);
if (!result.ok) return {error: result.error};
const views = {};
for (const section of document.querySelectorAll('.view[data-view-id]')) {
  const id = section.dataset.viewId;
  const read = part => Array.from(section.querySelectorAll(`[data-view="${id}-${part}"]`))
    .map(c => [c.dataset.vindex, c.dataset.vsrc || null]);
  const out = Array.from(section.querySelectorAll('[data-alias]'));
  views[id] = {A: read('A'), K: read('K'), out: out[0].dataset.alias,
               windows: out.map(c => {
                 window.convgrad.select(c.dataset.alias, c.dataset.index);
                 return [c.dataset.index, Array.from(section.querySelectorAll(
                   `[data-view="${id}-A"][data-window="true"]`)).map(a => a.dataset.vindex)];
               })};
}
return views;
"""


def _view_maps(g) -> dict:
    """Per view: (the output array, stride, dilation) of the correlation the math writes."""
    nd, s, d = g["nd"], tuple(g["stride"]), tuple(g["dilation"])
    ones = (1,) * nd
    if g["transposed"]:                 # y = forward dx map; dx = forward; dw: stride = d
        return {"y": ("y", ones, d), "dx": ("dx", s, d), "dw": ("dw", d, ones)}
    return {"dx": ("dx", ones, d), "dw": ("dw", d, ones)}


@pytest.mark.parametrize("n", range(len(GEOMETRIES)))
def test_convolution_views_correlate_to_the_engines_terms(page, n):
    g = GEOMETRIES[n]
    views = page.execute_script(VIEWS, g)
    assert "error" not in views, views.get("error")
    engine, _ = _engine_structure(g)
    maps = _view_maps(g)
    assert set(views) == set(maps)
    for view_id, (out, stride, dilation) in maps.items():
        view = views[view_id]
        assert view["out"] == out

        def cells(part):
            return {tuple(int(i) for i in vindex.split(",")): src for vindex, src in view[part]}
        a, k = cells("A"), cells("K")
        a_shape = tuple(max(p[ax] for p in a) + 1 for ax in range(g["nd"]))
        k_shape = tuple(max(p[ax] for p in k) + 1 for ax in range(g["nd"]))
        for index, window in view["windows"]:
            o = tuple(int(i) for i in index.split(","))
            taps = {m: tuple(s * i + dd * j for i, j, s, dd in zip(o, m, stride, dilation))
                    for m in np.ndindex(*k_shape)}
            assert all(all(0 <= t < n_ for t, n_ in zip(p, a_shape)) for p in taps.values()), \
                (view_id, o, "window outside the view's array")
            assert {tuple(int(i) for i in w.split(",")) for w in window} == set(taps.values())
            terms = {frozenset((k[m], a[p])) for m, p in taps.items()
                     if k[m] is not None and a[p] is not None}

            def name(factor):
                return f"{factor[0]}:{','.join(str(i) for i in factor[1])}"
            expected = {frozenset(name(f) for f in term)
                        for term in engine.get(_key(out, o), set())}
            assert terms == expected, (view_id, o)
