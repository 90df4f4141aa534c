/* convgrad explorer, part 3: cell names (x23, as convgrad explain prints them), formulas,
 * and the page's own numbers (seeded small integers, y dx dw db computed from the terms).
 */

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

