/* convgrad explorer, part 2: the index maps (docs/math.md#the-forward-index-map) and the
 * product terms of every y, dx, dw and db cell, and who depends on whom. convgrad's tests
 * check every cell against convgrad.explain.derive and the fast engine's Jacobian.
 */

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

