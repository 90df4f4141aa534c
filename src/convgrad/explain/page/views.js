/* convgrad explorer, part 5: the "as a convolution" views (docs/math.md#the-input-gradient-dx
 * and #the-weight-gradient-dw): dy spread and padded with rot180(w) for dx, x with the
 * dilated dy for dw, and their transposed-convolution counterparts.
 */

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

