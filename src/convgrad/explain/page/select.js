/* convgrad explorer, part 6: selection by hover or focus: the cells a cell depends on and
 * those depending on it (data-related), its window in the views, its formula.
 */

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

