"""The Examples sections of convgrad.functional's docstrings run as written (doctest)."""
import doctest

import convgrad
from convgrad import functional


def test_functional_doctests_pass():
    result = doctest.testmod(functional, raise_on_error=False, verbose=False)
    assert result.failed == 0
    assert result.attempted >= 100


def test_every_public_function_has_an_example_and_its_shapes():
    for name in functional.__all__:
        doc = getattr(functional, name).__doc__
        assert "Examples:" in doc and ">>> " in doc and "Shape:" in doc, name
        assert getattr(convgrad, name) is getattr(functional, name)


def test_conv2d_docstring_writes_the_cross_correlation():
    doc = functional.conv2d.__doc__
    assert "y[n, f, i, j] = b[f] + sum_{c, k, l} w[f, c, k, l]" in doc
    assert "xp[n, g(f)*C/G + c, sh*i + dh*k, sw*j + dw*l]" in doc


def test_geometry_doctests_pass():
    from convgrad.geometry import conv, scalars
    for module in (scalars, conv):
        result = doctest.testmod(module, raise_on_error=False, verbose=False)
        assert result.failed == 0 and result.attempted >= 1, module.__name__
