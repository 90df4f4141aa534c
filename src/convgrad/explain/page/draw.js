/* convgrad explorer, part 4: the page's state and the main grids (x padded, w, y, dy, dx,
 * dw, db), the legend and the summary line.
 */

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

