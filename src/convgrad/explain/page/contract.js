/* convgrad explorer: the backward pass of a convolution, cell by cell.
 *
 * Part 8, the last: the test contract, then the starting case is drawn.
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

