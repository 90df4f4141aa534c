/* convgrad explorer: the backward pass of a convolution, cell by cell.
 *
 * Package data of convgrad.explain, inlined by convgrad.explain.html() into one page.
 * The index maps below are docs/math.md's; convgrad's tests check every cell of the page
 * against convgrad.explain.derive and the fast engine. Validation messages are those of
 * convgrad.geometry, word for word, so a bad case reads the same here and in Python.
 *
 * Test contract (window.convgrad):
 *   set(g)            g = {nd, x, w, stride, padding: [[lo, hi], ..] | 'same' | 'valid',
 *                          dilation, transposed, output_padding}; returns {ok, error}
 *   terms(array, index)  the product terms of y/dx/dw/db cells: [[["w",[0,1]],["dy",[0,0]]], ..]
 *   values()          the page's numbers (x, w, b, dy, y, dx, dw, db) and convgrad's
 *   geometry(), error(), select(array, index)
 * Every grid cell carries data-array (x w y dy dx dw db) and data-index ("1,2"); after a
 * hover or focus the cells it depends on, and those depending on it, carry data-related.
 */
(function () {
  'use strict';

  var DATA = JSON.parse(document.getElementById('convgrad-data').textContent);
  var OP = DATA.op;
  var LIMITS = DATA.limits;
  var AXES = {1: ['L'], 2: ['H', 'W']};
  var DOT = '\u00b7';

  // ------------------------------------------------------------------------------------
  // Python's repr, and convgrad.geometry's validation with its messages

  function GeometryError(message) { this.message = message; }

  function fail(message) { throw new GeometryError(message); }

  function isInt(v) { return typeof v === 'number' && Number.isInteger(v); }

  function typeName(v) {
    if (v === null || v === undefined) return 'NoneType';
    if (typeof v === 'boolean') return 'bool';
    if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
    if (typeof v === 'string') return 'str';
    if (Array.isArray(v)) return 'tuple';
    return 'dict';
  }

  function repr(v) {
    if (v === null || v === undefined) return 'None';
    if (typeof v === 'boolean') return v ? 'True' : 'False';
    if (typeof v === 'string') return "'" + v + "'";
    if (typeof v === 'number') {
      if (Number.isInteger(v)) return String(v);
      if (Number.isNaN(v)) return 'nan';
      return String(v);
    }
    if (Array.isArray(v)) {
      return v.length === 1 ? '(' + repr(v[0]) + ',)' : '(' + v.map(repr).join(', ') + ')';
    }
    return String(v);
  }

  function ntuple(value, n, name) {
    var allowed = 'a positive int or a tuple of ' + n + ' positive ints';
    if (isInt(value)) {
      if (value < 1) fail(name + ' must be ' + allowed + ', got ' + repr(value));
      var out = [];
      for (var a = 0; a < n; a++) out.push(value);
      return out;
    }
    if (Array.isArray(value)) {
      if (value.length !== n) {
        fail(name + ' has ' + value.length + ' entries, ' + repr(value) + '; expected ' + allowed);
      }
    } else {
      fail(name + ' must be ' + allowed + ', got ' + repr(value) + ' (' + typeName(value) + ')');
    }
    value.forEach(function (item) {
      if (!isInt(item)) {
        fail(name + ' must be ' + allowed + ', got ' + repr(value) + ': ' + repr(item) +
             ' is a ' + typeName(item));
      }
      if (item < 1) fail(name + ' must be ' + allowed + ', got ' + repr(value));
    });
    return value.slice();
  }

  function spatialShape(value, name) {
    if (Array.isArray(value) && value.length !== 1 && value.length !== 2) {
      fail(OP + ': ' + name + '=' + repr(value) + ' must be the spatial size of one sample ' +
           'and one channel: (L,) for 1-D or (H, W) for 2-D');
    }
    return ntuple(value, Array.isArray(value) ? value.length : 1, OP + ': ' + name);
  }

  function nonNegative(item, name, value, allowed) {
    if (!isInt(item)) {
      fail(name + ' must be ' + allowed + ', got ' + repr(value) + ': ' + repr(item) +
           ' is a ' + typeName(item));
    }
    if (item < 0) {
      fail(name + ' must be ' + allowed + ', got ' + repr(value) +
           ': negative padding is not allowed (crop the input instead)');
    }
    return item;
  }

  function normalizePadding(padding, n, name, strings) {
    var allowed = 'a non-negative int, a tuple of ' + n + ' non-negative ints, or a tuple of ' +
      n + ' (lo, hi) pairs' + (strings ? ", or 'same' or 'valid'" : '');
    if (typeof padding === 'string') {
      if (!strings) fail(name + '=' + repr(padding) + ' is not supported here; expected ' + allowed);
      if (padding === 'same' || padding === 'valid') return padding;
      var low = padding.toLowerCase();
      var hint = (low === 'same' || low === 'valid') ?
        ' (padding strings are lower case: did you mean ' + repr(low) + '?)' : '';
      fail(name + '=' + repr(padding) + " is not a known padding string; expected 'same' or 'valid'" + hint);
    }
    var pairs = [], a;
    if (isInt(padding)) {
      var p = nonNegative(padding, name, padding, allowed);
      for (a = 0; a < n; a++) pairs.push([p, p]);
      return pairs;
    }
    if (!Array.isArray(padding)) {
      fail(name + ' must be ' + allowed + ', got ' + repr(padding) + ' (' + typeName(padding) + ')');
    }
    if (padding.length !== n) {
      var extra = '';
      if (n === 1 && padding.length === 2 && padding.every(isInt)) {
        extra = '; for asymmetric padding write ((' + padding[0] + ', ' + padding[1] + '),)';
      }
      fail(name + ' has ' + padding.length + ' entries, ' + repr(padding) + '; expected ' +
           allowed + extra);
    }
    padding.forEach(function (item) {
      if (Array.isArray(item)) {
        if (item.length !== 2) {
          fail(name + ' must be ' + allowed + ', got ' + repr(padding) + ': ' + repr(item) +
               ' is not a (lo, hi) pair');
        }
        pairs.push(item.map(function (v) { return nonNegative(v, name, padding, allowed); }));
      } else {
        var q = nonNegative(item, name, padding, allowed);
        pairs.push([q, q]);
      }
    });
    return pairs;
  }

  function samePadding(inSize, kernel, stride, dilation) {
    return inSize.map(function (n, a) {
      var out = Math.ceil(n / stride[a]);
      var total = Math.max((out - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1 - n, 0);
      return [Math.floor(total / 2), total - Math.floor(total / 2)];
    });
  }

  function zeros(n) { var out = []; for (var a = 0; a < n; a++) out.push(0); return out; }

  /* The case's geometry, validated as convgrad.explain.case_geometry validates it. Returns
   * {nd, x, w, y (sizes), stride, dilation, padding (pairs), transposed, output_padding,
   *  n, o (the forward convolution's input and output sizes), kd, od}. */
  function caseGeometry(g) {
    if (g === null || typeof g !== 'object' || Array.isArray(g)) {
      fail('explorer: set(g) takes an object such as {nd: 2, x: [5, 5], w: [3, 3], ' +
           'stride: [2, 2], padding: [[1, 1], [1, 1]], dilation: [1, 1], transposed: false}, ' +
           'got ' + repr(g));
    }
    var xs = spatialShape(g.x, 'x_shape');
    var ws = spatialShape(g.w, 'w_shape');
    if (ws.length !== xs.length) {
      fail(OP + ': w_shape=' + repr(ws) + ' must have as many axes as x_shape=' + repr(xs) +
           ' (' + xs.length + ')');
    }
    var nd = xs.length, axes = AXES[nd], a;
    if (g.nd !== undefined && g.nd !== nd) {
      fail('explorer: nd=' + repr(g.nd) + ' does not match x=' + repr(xs) + ', which has ' +
           nd + (nd === 1 ? ' axis' : ' axes'));
    }
    var s = ntuple(g.stride === undefined ? 1 : g.stride, nd, OP + ': stride');
    var d = ntuple(g.dilation === undefined ? 1 : g.dilation, nd, OP + ': dilation');
    var pads = normalizePadding(g.padding === undefined ? 0 : g.padding, nd, OP + ': padding', true);
    var transposed = g.transposed === true;
    var geometry = {nd: nd, x: xs, w: ws, stride: s, dilation: d, transposed: transposed};
    if (transposed) {
      var opad = normalizePadding(g.output_padding === undefined ? 0 : g.output_padding, nd,
                                  OP + ': output_padding', false);
      if (opad.some(function (p) { return p[0] !== p[1]; })) {
        fail(OP + ': output_padding must be one non-negative int per axis, got ' + repr(opad));
      }
      opad = opad.map(function (p) { return p[0]; });
      if (typeof pads === 'string') {
        if (opad.some(function (v) { return v !== 0; })) {
          fail(OP + ': output_padding=' + repr(opad) + ' cannot be combined with padding=' +
               repr(pads) + ', which sets the output size itself; use output_padding=0');
        }
        if (pads === 'valid') {
          pads = xs.map(function () { return [0, 0]; });
        } else {
          var outSize = xs.map(function (i, b) { return i * s[b]; });
          pads = samePadding(outSize, ws, s, d);
          opad = outSize.map(function (v, b) {
            return v - ((xs[b] - 1) * s[b] - pads[b][0] - pads[b][1] + d[b] * (ws[b] - 1) + 1);
          });
        }
      }
      for (a = 0; a < nd; a++) {
        if (opad[a] >= Math.max(s[a], d[a])) {
          fail(OP + ': output_padding=' + opad[a] + ' along ' + axes[a] + ' must be smaller ' +
               'than either the stride (' + s[a] + ') or the dilation (' + d[a] + ')');
        }
      }
      var n = [];
      for (a = 0; a < nd; a++) {
        var i = xs[a], k = ws[a], lo = pads[a][0], hi = pads[a][1], e = opad[a];
        var size = (i - 1) * s[a] - lo - hi + d[a] * (k - 1) + e + 1;
        if (size < 1) {
          fail(OP + ': the output along ' + axes[a] + ' would have size ' + size + ' = (' + i +
               ' - 1) x ' + s[a] + ' - ' + lo + ' - ' + hi + ' + ' + d[a] + ' x (' + k +
               ' - 1) + ' + e + ' + 1; the padding (it crops the output) must be at most ' +
               ((i - 1) * s[a] + d[a] * (k - 1) + e) + ' in total');
        }
        n.push(size);
      }
      geometry.output_padding = opad;
      geometry.n = n;
      geometry.o = xs.slice();
      geometry.y = n.slice();
    } else {
      if (g.output_padding !== undefined && g.output_padding !== 0) {
        fail(OP + ': output_padding=' + repr(g.output_padding) + ' applies to a transposed ' +
             'convolution only (transposed=True)');
      }
      if (pads === 'valid') pads = xs.map(function () { return [0, 0]; });
      else if (pads === 'same') pads = samePadding(xs, ws, s, d);
      var o = [];
      for (a = 0; a < nd; a++) {
        var nn = xs[a], kk = ws[a], l = pads[a][0], h = pads[a][1];
        var extent = d[a] * (kk - 1) + 1;
        var out = Math.floor((nn + l + h - d[a] * (kk - 1) - 1) / s[a]) + 1;
        if (out < 1) {
          fail(OP + ': the kernel along ' + axes[a] + ' (size ' + kk + ', dilation ' + d[a] +
               ': effective size ' + extent + ') is larger than the padded input (' + nn +
               ' + ' + l + ' + ' + h + ' = ' + (nn + l + h) + '); pad x by at least ' +
               (extent - nn - l - h) + ' more, or use a smaller kernel or dilation');
        }
        o.push(out);
      }
      geometry.output_padding = zeros(nd);
      geometry.n = xs.slice();
      geometry.o = o;
      geometry.y = o.slice();
    }
    geometry.padding = pads;
    geometry.kd = ws.map(function (k, b) { return d[b] * (k - 1) + 1; });
    geometry.od = geometry.o.map(function (v, b) { return s[b] * (v - 1) + 1; });
    checkLimits(geometry);
    return geometry;
  }

  /* What the page draws legibly; the same bounds and words as explorer.py's check_limits. */
  function checkLimits(G) {
    var axes = AXES[G.nd], a, pre = OP + ': ';
    for (a = 0; a < G.nd; a++) {
      if (G.x[a] > LIMITS.input) {
        fail(pre + 'x has ' + G.x[a] + ' entries along ' + axes[a] + '; the explorer draws ' +
             'inputs of up to ' + LIMITS.input + ' per axis, to stay readable: choose a smaller input');
      }
    }
    for (a = 0; a < G.nd; a++) {
      if (G.kd[a] > LIMITS.extent) {
        fail(pre + 'the kernel along ' + axes[a] + ' spans ' + G.kd[a] + ' entries (size ' +
             G.w[a] + ', dilation ' + G.dilation[a] + '); the explorer draws kernels spanning ' +
             'up to ' + LIMITS.extent + ': choose a smaller kernel or dilation');
      }
    }
    for (a = 0; a < G.nd; a++) {
      if (G.transposed && G.n[a] > LIMITS.output) {
        fail(pre + 'y would have ' + G.n[a] + ' entries along ' + axes[a] + '; the explorer ' +
             'draws outputs of up to ' + LIMITS.output + ' per axis: choose a smaller input or stride');
      }
      var lo = G.padding[a][0], hi = G.padding[a][1];
      if (!G.transposed && G.n[a] + lo + hi > LIMITS.padded) {
        fail(pre + 'the padded input along ' + axes[a] + ' has ' + (G.n[a] + lo + hi) +
             ' entries (' + G.n[a] + ' + ' + lo + ' + ' + hi + '); the explorer draws up to ' +
             LIMITS.padded + ': choose less padding');
      }
    }
  }

  // ------------------------------------------------------------------------------------
  // Index maps (docs/math.md#the-forward-index-map) and the terms of every cell

  function ndindex(shape) {
    var out = [[]];
    shape.forEach(function (n) {
      var next = [];
      out.forEach(function (prefix) {
        for (var i = 0; i < n; i++) next.push(prefix.concat([i]));
      });
      out = next;
    });
    return out;
  }

  function inRange(idx, shape) {
    for (var a = 0; a < shape.length; a++) if (idx[a] < 0 || idx[a] >= shape[a]) return false;
    return true;
  }

  function flat(idx, shape) {
    var f = 0;
    for (var a = 0; a < shape.length; a++) f = f * shape[a] + idx[a];
    return f;
  }

  function key(array, idx) { return array + ':' + idx.join(','); }

  /* Every product term of y, dx, dw and db, in convgrad.explain.Derivation.terms' order:
   * y by w index, dx/dw/db by dy index (row-major); factors w,x / w,dy / x,dy / dy. */
  function buildTerms(G) {
    var T = new Map(), nd = G.nd, s = G.stride, d = G.dilation, P = G.padding;
    var kernel = ndindex(G.w), ys = ndindex(G.y), xs = ndindex(G.x);
    function tap(i, k) {          // forward: the input position s*i + d*k - lo
      return i.map(function (v, a) { return s[a] * v + d[a] * k[a] - P[a][0]; });
    }
    function tapBack(j, k) {      // forward: the output i with s*i + d*k - lo = j, or null
      var i = [];
      for (var a = 0; a < nd; a++) {
        var num = j[a] + P[a][0] - d[a] * k[a];
        if (num % s[a] !== 0) return null;
        i.push(num / s[a]);
      }
      return i;
    }
    if (!G.transposed) {
      ys.forEach(function (i) {
        var terms = [];
        kernel.forEach(function (k) {
          var j = tap(i, k);
          if (inRange(j, G.x)) terms.push([['w', k], ['x', j]]);
        });
        T.set(key('y', i), terms);
      });
      xs.forEach(function (j) {
        var terms = [];
        ys.forEach(function (i) {
          var k = [];
          for (var a = 0; a < nd; a++) {
            var num = j[a] + P[a][0] - s[a] * i[a];
            if (num % d[a] !== 0) return;
            k.push(num / d[a]);
          }
          if (inRange(k, G.w)) terms.push([['w', k], ['dy', i]]);
        });
        T.set(key('dx', j), terms);
      });
      kernel.forEach(function (k) {
        var terms = [];
        ys.forEach(function (i) {
          var j = tap(i, k);
          if (inRange(j, G.x)) terms.push([['x', j], ['dy', i]]);
        });
        T.set(key('dw', k), terms);
      });
    } else {      // x is the forward output (size o), y the forward input (size n)
      ys.forEach(function (j) {
        var terms = [];
        kernel.forEach(function (k) {
          var i = tapBack(j, k);
          if (i !== null && inRange(i, G.x)) terms.push([['w', k], ['x', i]]);
        });
        T.set(key('y', j), terms);
      });
      xs.forEach(function (i) {
        var terms = [];
        kernel.forEach(function (k) {
          var j = tap(i, k);
          if (inRange(j, G.y)) terms.push([['w', k], ['dy', j]]);
        });
        T.set(key('dx', i), terms);
      });
      kernel.forEach(function (k) {
        var terms = [];
        xs.forEach(function (i) {
          var j = tap(i, k);
          if (inRange(j, G.y)) terms.push([['x', i], ['dy', j]]);
        });
        T.set(key('dw', k), terms);
      });
    }
    T.set('db:0', ys.map(function (i) { return [['dy', i]]; }));
    var order = {y: 0, dx: 1, dw: 1, db: 0};
    T.forEach(function (terms, k) {
      var which = order[k.split(':')[0]];
      terms.sort(function (p, q) {
        return flat(p[which][1], G[p[which][0] === 'dy' ? 'y' : 'w']) -
               flat(q[which][1], G[q[which][0] === 'dy' ? 'y' : 'w']);
      });
    });
    return T;
  }

  function buildDependents(T) {
    var R = new Map();
    T.forEach(function (terms, k) {
      terms.forEach(function (term) {
        term.forEach(function (factor) {
          var src = key(factor[0], factor[1]);
          if (!R.has(src)) R.set(src, []);
          if (R.get(src).indexOf(k) < 0) R.get(src).push(k);
        });
      });
    });
    return R;
  }

  // ------------------------------------------------------------------------------------
  // Names and numbers

  function symbolName(stem, idx) {
    var one = idx.map(function (i) { return i + 1; });
    if (one.some(function (i) { return i > 9; })) {
      return stem + one.map(function (i) { return '_' + i; }).join('');
    }
    return stem + one.join('');
  }

  function cellName(array, idx) { return array === 'db' ? 'db' : symbolName(array, idx); }

  function formulaOf(array, idx) {
    var terms = STATE.terms.get(key(array, array === 'db' ? [0] : idx)) || [];
    var products = terms.map(function (term) {
      return term.map(function (f) { return symbolName(f[0], f[1]); }).join(DOT);
    });
    if (array === 'y') products.unshift('b');
    return cellName(array, idx) + ' = ' + (products.length ? products.join(' + ') : '0');
  }

  function rng(seed) {        // mulberry32: small, seeded, the same in every browser
    var t = seed >>> 0;
    return function () {
      t = (t + 0x6D2B79F5) >>> 0;
      var r = Math.imul(t ^ (t >>> 15), 1 | t);
      r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
      return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
    };
  }

  function sameGeometry(G, embedded) {
    var mine = {nd: G.nd, x: G.x, w: G.w, y: G.y, stride: G.stride, dilation: G.dilation,
                padding: G.padding, transposed: G.transposed, output_padding: G.output_padding};
    var keys = Object.keys(mine);
    return keys.every(function (k) { return JSON.stringify(mine[k]) === JSON.stringify(embedded[k]); });
  }

  function computeValues(G) {
    var E = DATA.numbers, embedded = STATE.seed === 0 && sameGeometry(G, E.geometry);
    var v = {};
    if (embedded) {
      v.x = E.x.slice(); v.w = E.w.slice(); v.b = E.b; v.dy = E.dy.slice();
    } else {
      var r = rng(1 + STATE.seed * 7919 + flat(G.x, [13, 13]));
      var draw = function (n) {
        var out = [];
        for (var i = 0; i < n; i++) out.push(Math.floor(r() * 7) - 3);
        return out;
      };
      v.x = draw(ndindex(G.x).length); v.w = draw(ndindex(G.w).length);
      v.b = draw(1)[0]; v.dy = draw(ndindex(G.y).length);
    }
    var shapes = {x: G.x, w: G.w, dy: G.y, y: G.y, dx: G.x, dw: G.w};
    function value(array, idx) { return v[array][flat(idx, shapes[array])]; }
    function evaluate(array, idx) {
      var terms = STATE.terms.get(key(array, idx)) || [];
      var total = array === 'y' ? v.b : 0;
      terms.forEach(function (term) {
        var product = 1;
        term.forEach(function (f) { product *= value(f[0], f[1]); });
        total += product;
      });
      return total;
    }
    ['y', 'dx', 'dw'].forEach(function (array) {
      v[array] = ndindex(shapes[array]).map(function (idx) { return evaluate(array, idx); });
    });
    v.db = evaluate('db', [0]);
    v.convgrad = embedded ? {y: E.y, dx: E.dx, dw: E.dw, db: E.db, source: E.source} : null;
    v.value = value;
    return v;
  }

  function fmt(v) {
    if (Number.isInteger(v)) return v < 0 ? '\u2212' + (-v) : String(v);
    var s = (Math.round(v * 1000) / 1000).toString();
    return s.charAt(0) === '-' ? '\u2212' + s.slice(1) : s;
  }

  // ------------------------------------------------------------------------------------
  // Drawing

  var STATE = {geometry: null, terms: new Map(), dependents: new Map(), cells: new Map(),
               mode: DATA.mode, seed: 0, error: null, values: null, selected: null,
               spec: null, views: []};
  var stage = document.getElementById('stage');
  var messageBox = document.getElementById('message');
  var formulaBox = document.getElementById('formula');
  var summaryBox = document.getElementById('summary');

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function labelInto(e, stem, idx) {
    e.textContent = '';
    var span = el('span', 'lbl', stem);
    if (idx && idx.length) {
      var one = idx.map(function (i) { return i + 1; });
      var wide = one.some(function (i) { return i > 9; });
      span.appendChild(el('sub', null, one.join(wide ? ',' : '')));
    }
    e.appendChild(span);
  }

  function shapeText(shape) { return '(' + shape.join(' \u00d7 ') + ')'; }

  /* A grid of cells: shape (1-D: [L] drawn as one row), make(idx) -> element. */
  function grid(shape, make) {
    var g = el('div', 'grid');
    var cols = shape[shape.length - 1];
    g.style.gridTemplateColumns = 'repeat(' + cols + ', minmax(var(--cell-w), max-content))';
    g.dataset.cols = String(cols);
    ndindex(shape).forEach(function (idx) { g.appendChild(make(idx)); });
    return g;
  }

  function panel(title, caption, gridEl, cls) {
    var p = el('figure', 'panel' + (cls ? ' ' + cls : ''));
    p.appendChild(el('figcaption', 'title', title));
    p.appendChild(gridEl);
    if (caption) p.appendChild(el('div', 'caption', caption));
    return p;
  }

  function op(symbol, title) {
    var o = el('div', 'op', symbol);
    if (title) o.title = title;
    return o;
  }

  function mainCell(array, idx) {
    var c = el('div', 'cell c-' + array);
    var index = array === 'db' ? [0] : idx;
    c.tabIndex = 0;
    c.dataset.array = array;
    c.dataset.index = index.join(',');
    var isOutput = array === 'y' || array === 'dx' || array === 'dw' || array === 'db';
    var V = STATE.values;
    if (STATE.mode === 'numbers') {
      var mine = array === 'db' ? V.db : V[array][flat(idx, shapeOf(array))];
      c.appendChild(el('span', 'num', fmt(mine)));
      if (isOutput && V.convgrad) {
        var theirs = array === 'db' ? V.convgrad.db : V.convgrad[array][flat(idx, shapeOf(array))];
        var agree = Math.abs(theirs - mine) <= 1e-9 * Math.max(1, Math.abs(theirs));
        var cg = el('span', 'cg' + (agree ? '' : ' disagree'), fmt(theirs));
        cg.title = 'convgrad: ' + theirs;
        c.appendChild(cg);
      }
    } else {
      labelInto(c, array === 'db' ? 'db' : array, array === 'db' ? [] : idx);
    }
    c.setAttribute('aria-label', isOutput ? formulaOf(array, idx) : cellName(array, idx));
    STATE.cells.set(key(array, index), c);
    return c;
  }

  function shapeOf(array) {
    var G = STATE.geometry;
    return {x: G.x, w: G.w, y: G.y, dy: G.y, dx: G.x, dw: G.w}[array];
  }

  /* One array spread by `stride` (stride-1 zeros between entries) and padded by `pairs`
   * (a negative amount crops), as view cells: symbol, inserted zero or padding. */
  function spreadPad(array, shape, stride, pairs) {
    var spread = shape.map(function (n, a) { return stride[a] * (n - 1) + 1; });
    var size = spread.map(function (n, a) { return n + pairs[a][0] + pairs[a][1]; });
    var cells = ndindex(size).map(function (p) {
      var kind = 'sym', idx = [];
      for (var a = 0; a < p.length; a++) {
        var q = p[a] - pairs[a][0];
        if (q < 0 || q >= spread[a]) { kind = 'pad'; break; }
        if (q % stride[a] !== 0) kind = 'insert';
        idx.push(q / stride[a]);
      }
      return kind === 'sym' ? {kind: kind, array: array, index: idx} : {kind: kind};
    });
    return {shape: size, cells: cells};
  }

  function rotated(G) {
    return {shape: G.w.slice(), cells: ndindex(G.w).map(function (m) {
      return {kind: 'sym', array: 'w', index: m.map(function (v, a) { return G.w[a] - 1 - v; })};
    })};
  }

  function plain(array, shape) {
    return {shape: shape.slice(), cells: ndindex(shape).map(function (m) {
      return {kind: 'sym', array: array, index: m};
    })};
  }

  function perAxis(values) {
    var same = values.every(function (v) { return JSON.stringify(v) === JSON.stringify(values[0]); });
    return same ? String(values[0]) : repr(values);
  }

  function pairsText(pairs) {
    return pairs.map(function (p) { return '(' + p[0] + ', ' + p[1] + ')'; }).join(' \u00d7 ');
  }

  function zerosText(n) { return n === 1 ? '1 zero' : n + ' zeros'; }

  function cropText(pairs, why) {
    var negative = pairs.some(function (p) { return p[0] < 0 || p[1] < 0; });
    return negative ? ' (a negative amount crops' + (why ? ': ' + why : '') + ')' : '';
  }

  /* The "as a convolution" views (docs/math.md#the-input-gradient-dx and #the-weight-gradient-dw). */
  function buildViews(G) {
    var views = [], ones = G.w.map(function () { return 1; });
    var fullPad = G.n.map(function (n, a) {
      return [G.kd[a] - 1 - G.padding[a][0], n - G.od[a] + G.padding[a][0]];
    });
    var cutPad = G.n.map(function (n, a) {
      return [G.padding[a][0], G.od[a] + G.kd[a] - 1 - n - G.padding[a][0]];
    });
    var inserted = perAxis(G.stride.map(function (s) { return s - 1; }));
    var ins = G.stride.every(function (s) { return s === G.stride[0]; }) ? zerosText(G.stride[0] - 1)
      : inserted + ' zeros';
    if (!G.transposed) {
      views.push({id: 'dx', out: 'dx', outShape: G.x, stride: ones, dilation: G.dilation,
        title: 'dx = (dy with ' + ins + ' inserted between entries, padded) \u2605 rot180(w)',
        note: 'padding ' + pairsText(fullPad) + cropText(fullPad) + '; stride 1, dilation ' +
              perAxis(G.dilation) + '. Hover a dx cell: its window is outlined.',
        A: spreadPad('dy', G.o, G.stride, fullPad), aTitle: 'dy spread and padded',
        K: rotated(G), kTitle: 'rot180(w)'});
      views.push({id: 'dw', out: 'dw', outShape: G.w, stride: G.dilation, dilation: ones,
        title: 'dw = (x padded) \u2605 (dy dilated by the stride ' + perAxis(G.stride) + ')',
        note: 'x padded by ' + pairsText(cutPad) + cropText(cutPad, 'the leftover rows') + '; stride ' +
              perAxis(G.dilation) + ' (the dilation): stride and dilation trade places.',
        A: spreadPad('x', G.n, ones, cutPad), aTitle: 'x padded for dw',
        K: spreadPad('dy', G.o, G.stride, G.w.map(function () { return [0, 0]; })),
        kTitle: 'dy dilated by ' + perAxis(G.stride)});
    } else {
      views.push({id: 'y', out: 'y', outShape: G.y, stride: ones, dilation: G.dilation,
        title: 'y = b + (x with ' + ins + ' inserted between entries, padded) \u2605 rot180(w)',
        note: 'the forward convolution\'s dx map: padding ' + pairsText(fullPad) +
              cropText(fullPad) + '; stride 1, dilation ' + perAxis(G.dilation) + '.',
        A: spreadPad('x', G.o, G.stride, fullPad), aTitle: 'x spread and padded',
        K: rotated(G), kTitle: 'rot180(w)'});
      views.push({id: 'dx', out: 'dx', outShape: G.x, stride: G.stride, dilation: G.dilation,
        title: 'dx = (dy padded) \u2605 w: a forward convolution',
        note: 'dy padded by ' + pairsText(cutPad) + cropText(cutPad) + '; stride ' +
              perAxis(G.stride) + ', dilation ' + perAxis(G.dilation) + '.',
        A: spreadPad('dy', G.n, ones, cutPad), aTitle: 'dy padded',
        K: plain('w', G.w), kTitle: 'w'});
      views.push({id: 'dw', out: 'dw', outShape: G.w, stride: G.dilation, dilation: ones,
        title: 'dw = (dy padded) \u2605 (x dilated by the stride ' + perAxis(G.stride) + ')',
        note: 'the roles of x and dy swapped; stride ' + perAxis(G.dilation) + ' (the dilation).',
        A: spreadPad('dy', G.n, ones, cutPad), aTitle: 'dy padded',
        K: spreadPad('x', G.o, G.stride, G.w.map(function () { return [0, 0]; })),
        kTitle: 'x dilated by ' + perAxis(G.stride)});
    }
    return views;
  }

  function viewCell(view, part, info, p) {
    var c = el('div', 'cell v-' + info.kind);
    c.dataset.view = view.id + '-' + part;
    c.dataset.vindex = p.join(',');
    if (info.kind === 'sym') {
      c.dataset.vsrc = key(info.array, info.index);
      c.classList.add('c-' + info.array);
      if (STATE.mode === 'numbers') c.appendChild(el('span', 'num', fmt(STATE.values.value(info.array, info.index))));
      else labelInto(c, info.array, info.index);
    } else {
      c.textContent = '0';
      c.title = info.kind === 'insert' ? 'a zero inserted by the stride' : 'padding';
    }
    return c;
  }

  function drawView(view) {
    var section = el('section', 'view');
    section.dataset.viewId = view.id;
    section.appendChild(el('h3', null, view.title));
    var row = el('div', 'row');
    var A = grid(view.A.shape, function (p) {
      return viewCell(view, 'A', view.A.cells[flat(p, view.A.shape)], p);
    });
    var K = grid(view.K.shape, function (p) {
      return viewCell(view, 'K', view.K.cells[flat(p, view.K.shape)], p);
    });
    var out = grid(view.outShape, function (idx) {
      var c = el('div', 'cell c-' + view.out);
      c.tabIndex = -1;
      c.dataset.alias = view.out;
      c.dataset.index = idx.join(',');
      if (STATE.mode === 'numbers') c.appendChild(el('span', 'num', fmt(STATE.values[view.out][flat(idx, view.outShape)])));
      else labelInto(c, view.out, idx);
      return c;
    });
    row.appendChild(panel(view.aTitle, shapeText(view.A.shape), A));
    row.appendChild(op('\u2605', 'cross-correlation'));
    row.appendChild(panel(view.kTitle, shapeText(view.K.shape), K));
    row.appendChild(op('='));
    row.appendChild(panel(view.out, shapeText(view.outShape), out));
    section.appendChild(row);
    section.appendChild(el('p', 'note', view.note));
    return section;
  }

  function legend() {
    var l = el('div', 'legend');
    [['sw-source', 'a cell the selected one depends on'],
     ['sw-dependent', 'a cell that depends on the selected one'],
     ['sw-window', 'the window (with its zeros) that produces it'],
     ['sw-pad', 'padding (zero)'], ['sw-insert', 'zero inserted by the stride'],
     ['sw-leftover', 'leftover: never read by any window, so its gradient is 0']]
      .forEach(function (item) {
        var s = el('span', 'item');
        s.appendChild(el('span', 'swatch ' + item[0]));
        s.appendChild(document.createTextNode(item[1]));
        l.appendChild(s);
      });
    l.appendChild(el('span', 'item', '\u2605 = cross-correlation: out[i] = \u03a3\u2096 kernel[k]' +
                     DOT + 'in[stride' + DOT + 'i + dilation' + DOT + 'k]'));
    return l;
  }

  function render() {
    var G = STATE.geometry;
    STATE.cells = new Map();
    stage.textContent = '';
    stage.classList.remove('stale');
    stage.appendChild(legend());

    var forward = el('section', 'stage-row');
    forward.appendChild(el('h2', null, G.transposed ?
      'Forward: y = b + conv_transpose(x, w), the adjoint of a convolution' :
      'Forward: y = b + (x zero-padded) \u2605 w'));
    var row = el('div', 'row');
    var xPanel;
    if (!G.transposed) {
      var P = G.padding, padded = G.n.map(function (n, a) { return n + P[a][0] + P[a][1]; });
      var reach = G.od.map(function (v, a) { return v + G.kd[a] - 1; });
      xPanel = grid(padded, function (p) {
        var j = p.map(function (v, a) { return v - P[a][0]; }), c;
        if (inRange(j, G.x)) {
          c = mainCell('x', j);
        } else {
          c = el('div', 'cell v-pad', '0');
          c.title = 'padding';
        }
        c.dataset.pindex = p.join(',');
        if (p.some(function (v, a) { return v >= reach[a]; })) c.classList.add('leftover');
        return c;
      });
      row.appendChild(panel('x, padded by ' + pairsText(P), 'x ' + shapeText(G.x) +
                            ', padded ' + shapeText(padded), xPanel, 'px'));
    } else {
      row.appendChild(panel('x (the input)', shapeText(G.x), grid(G.x, function (i) { return mainCell('x', i); })));
    }
    row.appendChild(op(G.transposed ? '\u2192' : '\u2605'));
    row.appendChild(panel('w', shapeText(G.w), grid(G.w, function (k) { return mainCell('w', k); })));
    row.appendChild(op('+ b ='));
    row.appendChild(panel('y', shapeText(G.y), grid(G.y, function (i) { return mainCell('y', i); })));
    forward.appendChild(row);
    forward.appendChild(el('p', 'note', describe(G)));
    stage.appendChild(forward);

    var backward = el('section', 'stage-row');
    backward.appendChild(el('h2', null, 'Backward: dy = \u2202L/\u2202y arrives; dx, dw, db by the chain rule'));
    var row2 = el('div', 'row');
    row2.appendChild(panel('dy = \u2202L/\u2202y', shapeText(G.y), grid(G.y, function (i) { return mainCell('dy', i); })));
    row2.appendChild(op('\u2192'));
    row2.appendChild(panel('dx = \u2202L/\u2202x', shapeText(G.x), grid(G.x, function (j) { return mainCell('dx', j); })));
    row2.appendChild(panel('dw = \u2202L/\u2202w', shapeText(G.w), grid(G.w, function (k) { return mainCell('dw', k); })));
    row2.appendChild(panel('db = \u2202L/\u2202b', '', grid([1], function () { return mainCell('db', []); })));
    backward.appendChild(row2);
    stage.appendChild(backward);

    var views = el('section', 'stage-row');
    views.appendChild(el('h2', null, 'The same gradients as convolutions'));
    STATE.views = buildViews(G);
    STATE.views.forEach(function (v) { views.appendChild(drawView(v)); });
    stage.appendChild(views);
    summarize();
    if (STATE.selected) select(STATE.selected[0], STATE.selected[1]);
    else showFormula(null);
  }

  function describe(G) {
    var text = 'x ' + shapeText(G.x) + ', w ' + shapeText(G.w) + ', stride ' + perAxis(G.stride) +
      ', padding ' + pairsText(G.padding) + ', dilation ' + perAxis(G.dilation);
    if (G.transposed) text += ', output_padding ' + perAxis(G.output_padding);
    text += ' \u2192 y ' + shapeText(G.y) + '.';
    if (!G.transposed) {
      var left = G.n.map(function (n, a) {
        return n + G.padding[a][0] + G.padding[a][1] - (G.od[a] + G.kd[a] - 1);
      });
      if (left.some(function (v) { return v > 0; })) {
        text += ' Leftover (never read): ' + perAxis(left) + ' at the end of the padded input.';
      }
    }
    return text;
  }

  function command(G) {
    var parts = ['convgrad explain --html explorer.html', '--input-size ' + G.x.join(','),
                 '--kernel-size ' + G.w.join(','), '--stride ' + G.stride.join(','),
                 '--padding ' + G.padding.map(function (p) { return p[0] + ':' + p[1]; }).join(','),
                 '--dilation ' + G.dilation.join(',')];
    if (G.transposed) parts.push('--transposed --output-padding ' + G.output_padding.join(','));
    if (STATE.mode === 'numbers') parts.push('--numeric');
    return parts.join(' ');
  }

  function summarize() {
    var V = STATE.values;
    summaryBox.textContent = '';
    if (STATE.mode !== 'numbers') {
      summaryBox.textContent = 'Symbols mode: 1-based names as convgrad explain prints them ' +
        '(x23 is row 2, column 3). Switch to numbers to compute the values.';
      return;
    }
    if (V.convgrad) {
      var worst = 0;
      ['y', 'dx', 'dw'].forEach(function (a) {
        V[a].forEach(function (v, i) { worst = Math.max(worst, Math.abs(v - V.convgrad[a][i])); });
      });
      worst = Math.max(worst, Math.abs(V.db - V.convgrad.db));
      summaryBox.textContent = 'Numbers mode: each output cell shows the page\u2019s value and, ' +
        'below it, convgrad\u2019s (' + V.convgrad.source + ', embedded when the file was ' +
        'written). Largest difference over y, dx, dw, db: ' + worst + '.';
      summaryBox.dataset.agree = worst <= 1e-9 ? 'true' : 'false';
    } else {
      summaryBox.textContent = 'Numbers mode: the page computes y, dx, dw, db. convgrad\u2019s ' +
        'values are embedded for the case the file was written with; to compare this one, run: ' +
        command(STATE.geometry);
      delete summaryBox.dataset.agree;
    }
  }

  // ------------------------------------------------------------------------------------
  // Selection: hover or focus

  function clearMarks() {
    stage.querySelectorAll('[data-related], [data-selected], [data-window], [data-echo]')
      .forEach(function (c) {
        delete c.dataset.related; delete c.dataset.role; delete c.dataset.selected;
        delete c.dataset.window; delete c.dataset.echo;
      });
  }

  function showFormula(lines) {
    formulaBox.textContent = '';
    if (!lines) {
      formulaBox.appendChild(el('span', 'hint', 'Hover over or tab to a cell to see its formula.'));
      delete formulaBox.dataset.formula;
      return;
    }
    var code = el('code', 'main', lines[0]);
    formulaBox.dataset.formula = lines[0];
    formulaBox.appendChild(code);
    for (var i = 1; i < lines.length; i++) formulaBox.appendChild(el('div', 'more', lines[i]));
  }

  function markWindow(view, outIdx) {
    var shape = view.K.shape;
    ndindex(shape).forEach(function (m) {
      var p = outIdx.map(function (o, a) { return view.stride[a] * o + view.dilation[a] * m[a]; });
      var a = stage.querySelector('[data-view="' + view.id + '-A"][data-vindex="' + p.join(',') + '"]');
      if (a) a.dataset.window = 'true';
    });
    stage.querySelectorAll('[data-view="' + view.id + '-K"]').forEach(function (k) { k.dataset.window = 'true'; });
    var out = stage.querySelector('.view[data-view-id="' + view.id + '"] [data-alias="' + view.out +
                                  '"][data-index="' + outIdx.join(',') + '"]');
    if (out) out.dataset.selected = 'true';
  }

  function select(array, index) {
    var idx = typeof index === 'string' ? (index === '' ? [] : index.split(',').map(Number)) : index.slice();
    if (array === 'db') idx = [0];
    var k = key(array, idx), cell = STATE.cells.get(k);
    if (!cell) return false;
    clearMarks();
    STATE.selected = [array, idx.join(',')];
    cell.dataset.selected = 'true';
    var sources = [];
    (STATE.terms.get(k) || []).forEach(function (term) {
      term.forEach(function (f) { sources.push(key(f[0], f[1])); });
    });
    sources.forEach(function (s) {
      var c = STATE.cells.get(s);
      if (c) { c.dataset.related = 'true'; c.dataset.role = 'source'; }
    });
    var dependents = STATE.dependents.get(k) || [];
    dependents.forEach(function (s) {
      var c = STATE.cells.get(s);
      if (c) { c.dataset.related = 'true'; c.dataset.role = 'dependent'; }
    });
    stage.querySelectorAll('[data-vsrc="' + k + '"]').forEach(function (c) { c.dataset.echo = 'true'; });
    var G = STATE.geometry;
    if (array === 'y' && !G.transposed) {        // the window of y in the padded x
      ndindex(G.w).forEach(function (m) {
        var p = idx.map(function (i, a) { return G.stride[a] * i + G.dilation[a] * m[a]; });
        var c = stage.querySelector('.px [data-pindex="' + p.join(',') + '"]');
        if (c) c.dataset.window = 'true';
      });
    }
    STATE.views.forEach(function (v) { if (v.out === array) markWindow(v, idx); });
    showFormula(describeCell(array, idx, sources, dependents));
    return true;
  }

  function describeCell(array, idx, sources, dependents) {
    var V = STATE.values, lines;
    if (array === 'y' || array === 'dx' || array === 'dw' || array === 'db') {
      lines = [formulaOf(array, idx)];
      if (STATE.mode === 'numbers') {
        var terms = STATE.terms.get(key(array, idx)) || [];
        var parts = terms.map(function (term) {
          return term.map(function (f) { return '(' + fmt(V.value(f[0], f[1])) + ')'; }).join(DOT);
        });
        if (array === 'y') parts.unshift('(' + fmt(V.b) + ')');
        var mine = array === 'db' ? V.db : V[array][flat(idx, shapeOf(array))];
        var line = '= ' + (parts.length ? parts.join(' + ') : '0') + ' = ' + fmt(mine);
        if (V.convgrad) {
          var theirs = array === 'db' ? V.convgrad.db : V.convgrad[array][flat(idx, shapeOf(array))];
          line += '    (convgrad: ' + fmt(theirs) + ')';
        }
        lines.push(line);
      }
      var what = {y: 'the output', dx: '\u2202L/\u2202x: the gradient passed down',
                  dw: '\u2202L/\u2202w: the filter\u2019s gradient', db: '\u2202L/\u2202b'}[array];
      lines.push(what + '; ' + (sources.length ? 'highlighted: the cells it depends on.' :
                 'no window reaches it: it is 0.'));
      return lines;
    }
    var name = cellName(array, idx), users = dependents.map(function (k) {
      var parts = k.split(':');
      return cellName(parts[0], parts[1].split(',').map(Number));
    });
    var role = {x: 'input', w: 'filter tap', dy: '\u2202L/\u2202' + symbolName('y', idx) +
                ', from the layer above'}[array];
    lines = [name + ' (' + role + ')' + (STATE.mode === 'numbers' ? ' = ' + fmt(V.value(array, idx)) : '')];
    lines.push(users.length ? 'used by ' + users.join(', ') : 'used by no output: its ' +
               (array === 'x' ? 'gradient is 0 (leftover)' : 'window is empty'));
    return lines;
  }

  // ------------------------------------------------------------------------------------
  // Controls

  var form = document.getElementById('controls');
  function $(id) { return document.getElementById(id); }

  function readNumber(id) {
    var text = $(id).value.trim();
    if (text === '') return null;
    var v = Number(text);
    return Number.isNaN(v) ? text : v;
  }

  function specFromControls() {
    var nd = Number(form.querySelector('input[name=nd]:checked').value);
    var axes = nd === 1 ? [0] : [0, 1];
    function read(prefix) { return axes.map(function (a) { return readNumber(prefix + a); }); }
    var mode = $('padmode').value, padding;
    if (mode === 'same' || mode === 'valid') padding = mode;
    else if (mode === 'symmetric') padding = read('plo').map(function (v) { return [v, v]; });
    else padding = axes.map(function (a) { return [readNumber('plo' + a), readNumber('phi' + a)]; });
    var spec = {nd: nd, x: read('x'), w: read('w'), stride: read('s'), padding: padding,
                dilation: read('d'), transposed: $('transposed').checked};
    if (spec.transposed) spec.output_padding = read('op');
    return spec;
  }

  function showControls(spec, G) {
    form.querySelectorAll('input[name=nd]').forEach(function (r) { r.checked = Number(r.value) === G.nd; });
    form.querySelectorAll('input[name=mode]').forEach(function (r) { r.checked = r.value === STATE.mode; });
    $('transposed').checked = G.transposed;
    for (var a = 0; a < 2; a++) {
      if (a < G.nd) {
        $('x' + a).value = G.x[a]; $('w' + a).value = G.w[a]; $('s' + a).value = G.stride[a];
        $('d' + a).value = G.dilation[a]; $('plo' + a).value = G.padding[a][0];
        $('phi' + a).value = G.padding[a][1]; $('op' + a).value = G.output_padding[a];
      }
    }
    var mode = typeof spec.padding === 'string' ? spec.padding :
      (G.padding.every(function (p) { return p[0] === p[1]; }) && $('padmode').value !== 'sides' ?
       'symmetric' : 'sides');
    $('padmode').value = mode;
    layoutControls();
  }

  function layoutControls() {
    var nd = Number(form.querySelector('input[name=nd]:checked').value);
    form.classList.toggle('nd1', nd === 1);
    form.querySelector('th.axis0').textContent = AXES[nd][0];
    var mode = $('padmode').value;
    form.classList.toggle('pad-none', mode === 'same' || mode === 'valid');
    form.classList.toggle('pad-sym', mode === 'symmetric');
    form.classList.toggle('transposed', $('transposed').checked);
  }

  function showError(message) {
    STATE.error = message;
    messageBox.hidden = false;
    messageBox.textContent = '';
    messageBox.appendChild(el('strong', null, 'convgrad explain: '));
    messageBox.appendChild(el('span', 'text', message.replace(/^explain: /, '')));
    messageBox.dataset.message = message;
    stage.classList.add('stale');
  }

  function clearError() {
    STATE.error = null;
    messageBox.hidden = true;
    messageBox.textContent = '';
    delete messageBox.dataset.message;
  }

  /* Validate and draw a case; on a bad one, say why and keep the last good drawing dimmed. */
  function apply(spec, fromControls) {
    var G;
    try {
      G = caseGeometry(spec);
    } catch (error) {
      if (!(error instanceof GeometryError)) throw error;
      showError(error.message);
      return {ok: false, error: error.message};
    }
    clearError();
    var changed = !STATE.geometry || JSON.stringify(STATE.geometry) !== JSON.stringify(G);
    STATE.geometry = G;
    STATE.spec = spec;
    if (changed) STATE.selected = null;
    STATE.terms = buildTerms(G);
    STATE.dependents = buildDependents(STATE.terms);
    STATE.values = computeValues(G);
    if (!fromControls) showControls(spec, G);
    else layoutControls();
    render();
    return {ok: true, error: null};
  }

  function onControl(event) {
    if (event.target.name === 'mode') STATE.mode = event.target.value;
    layoutControls();
    apply(specFromControls(), true);
  }
  form.addEventListener('input', onControl);
  form.addEventListener('change', onControl);
  $('reroll').addEventListener('click', function () {
    STATE.seed += 1;
    STATE.mode = 'numbers';
    form.querySelectorAll('input[name=mode]').forEach(function (r) { r.checked = r.value === 'numbers'; });
    apply(specFromControls(), true);
  });

  // hover and keyboard focus select a cell; arrow keys move within a grid
  function target(node) {
    var c = node && node.closest ? node.closest('.cell') : null;
    if (!c) return null;
    if (c.dataset.array) return [c.dataset.array, c.dataset.index];
    if (c.dataset.alias) return [c.dataset.alias, c.dataset.index];
    if (c.dataset.vsrc) {
      var parts = c.dataset.vsrc.split(':');
      return [parts[0], parts[1]];
    }
    return null;
  }
  // The browser also sends mouseover when the page scrolls under a still pointer (as when
  // keyboard focus scrolls a cell into view): only a pointer that moved takes over.
  var pointer = {x: null, y: null};
  stage.addEventListener('mouseover', function (event) {
    if (event.isTrusted) {
      if (event.screenX === pointer.x && event.screenY === pointer.y) return;
      pointer.x = event.screenX; pointer.y = event.screenY;
    }
    var t = target(event.target);
    if (t) select(t[0], t[1]);
  });
  stage.addEventListener('focusin', function (event) {
    var t = target(event.target);
    if (t) select(t[0], t[1]);
  });
  stage.addEventListener('keydown', function (event) {
    var c = event.target.closest ? event.target.closest('.cell') : null;
    if (!c) return;
    if (event.key === 'Escape') { clearMarks(); STATE.selected = null; showFormula(null); return; }
    var steps = {ArrowLeft: -1, ArrowRight: 1};
    var g = c.parentElement, cols = Number(g.dataset.cols), kids = Array.prototype.slice.call(g.children);
    var pos = kids.indexOf(c), next = null;
    if (event.key in steps) next = pos + steps[event.key];
    else if (event.key === 'ArrowUp') next = pos - cols;
    else if (event.key === 'ArrowDown') next = pos + cols;
    if (next === null) return;
    event.preventDefault();
    for (var i = next; i >= 0 && i < kids.length; i += (next > pos ? 1 : -1)) {
      if (kids[i].tabIndex >= 0) { kids[i].focus(); break; }
      if (event.key === 'ArrowUp' || event.key === 'ArrowDown') break;
    }
  });

  // ------------------------------------------------------------------------------------
  // The test contract

  function copyTerms(terms) {
    return terms.map(function (term) {
      return term.map(function (f) { return [f[0], f[1].slice()]; });
    });
  }

  window.convgrad = {
    set: function (g) { return apply(g, false); },
    terms: function (array, index) {
      var idx = typeof index === 'string' ? (index === '' ? [] : index.split(',').map(Number)) :
        (index === undefined ? [] : index.slice());
      if (array === 'db') idx = [0];
      return copyTerms(STATE.terms.get(key(array, idx)) || []);
    },
    values: function () {
      var V = STATE.values;
      return {x: V.x, w: V.w, b: V.b, dy: V.dy, y: V.y, dx: V.dx, dw: V.dw, db: V.db,
              convgrad: V.convgrad};
    },
    geometry: function () { return JSON.parse(JSON.stringify(STATE.geometry)); },
    error: function () { return STATE.error; },
    select: select,
    mode: function (m) {
      if (m === 'symbols' || m === 'numbers') { STATE.mode = m; showControls(STATE.spec, STATE.geometry); render(); }
      return STATE.mode;
    },
    formula: function (array, index) {
      var idx = typeof index === 'string' ? index.split(',').map(Number) : (index || []);
      return formulaOf(array, idx);
    }
  };

  var initial = apply(DATA.initial, false);
  if (!initial.ok) stage.appendChild(el('p', 'note', 'The starting case could not be drawn.'));
})();
