/* convgrad explorer, part 7: the controls (1-D/2-D, sizes, stride, padding, dilation,
 * transposed, symbols/numbers) and the keyboard.
 */

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

