/* convgrad explorer, part 1 of 8 (convgrad.explain.explorer joins the parts, in the order of
 * PARTS there, inside one function in the page's one script): the data convgrad embeds,
 * Python's repr, and convgrad.geometry's validation with its messages, word for word, so a
 * bad case reads the same here and in Python.
 */

var DATA = JSON.parse(document.getElementById('convgrad-data').textContent);
var OP = DATA.op;
var LIMITS = DATA.limits;
var AXES = {1: ['L'], 2: ['H', 'W']};
var DOT = '\u00b7';


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

