// The live dashboard: one state snapshot per server-sent event (src/ops/http-server.ts), redrawn whole.
// Every string from the daemon goes in through textContent, never as markup: user names come from phones.

const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

const short = (id) => (id ? id.slice(0, 8) : '?');
// Ring position of a 160-bit id as a fraction of the circle (the first 32 bits are plenty for drawing).
const frac = (id) => parseInt(id.slice(0, 8), 16) / 2 ** 32;

function arrowDefs(root) {
  const defs = svg('defs');
  const m = svg('marker', {
    id: 'arrow',
    viewBox: '0 0 10 10',
    refX: 9,
    refY: 5,
    markerWidth: 7,
    markerHeight: 7,
    orient: 'auto-start-reverse',
  });
  m.append(svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: 'context-stroke' }));
  defs.append(m);
  root.append(defs);
}

function drawRing(ring) {
  const root = $('ring');
  root.replaceChildren();
  arrowDefs(root);
  const cx = 260,
    cy = 260,
    r = 190;
  const at = (f, rad = r) => [cx + rad * Math.sin(2 * Math.PI * f), cy - rad * Math.cos(2 * Math.PI * f)];
  root.append(svg('circle', { cx, cy, r, fill: 'none', stroke: '#d1d5db', 'stroke-width': 2 }));
  const members = ring ? ring.members : [];
  const byId = new Map(members.map((m) => [m.id, m]));
  const hue = (i) => `hsl(${Math.round((360 * i) / Math.max(1, members.length))} 70% 45%)`;
  members.forEach((m, i) => {
    // Its range (pred, id], drawn clockwise on the circle.
    if (!m.rangeFrom || m.rangeFrom === m.id) return;
    const a = frac(m.rangeFrom),
      b = frac(m.id);
    const span = (b - a + 1) % 1;
    const [x1, y1] = at(a, r + 14),
      [x2, y2] = at(b, r + 14);
    const d = `M ${x1} ${y1} A ${r + 14} ${r + 14} 0 ${span > 0.5 ? 1 : 0} 1 ${x2} ${y2}`;
    root.append(svg('path', { d, class: 'arc', stroke: hue(i) }));
  });
  for (const m of members) {
    const s = m.succ && byId.get(m.succ);
    if (!s || s.id === m.id) continue;
    const [x1, y1] = at(frac(m.id), r - 8),
      [x2, y2] = at(frac(s.id), r - 8);
    root.append(
      svg('path', {
        d: `M ${x1} ${y1} Q ${cx} ${cy} ${x2} ${y2}`,
        class: 'succ-link',
        'data-from': m.id,
        'data-to': s.id,
      }),
    );
  }
  // Labels of members close together on the circle are pushed outwards in turn, so they do not overlap.
  let prev = -1;
  let lift = 0;
  members.forEach((m) => {
    const f = frac(m.id);
    lift = prev >= 0 && f - prev < 0.045 ? (lift + 1) % 3 : 0;
    prev = f;
    const [x, y] = at(f);
    const g = svg('g', {
      class: `member${m.bootstrap ? ' bootstrap' : ''}${m.local ? '' : ' remote'}`,
      'data-member-id': m.id,
    });
    if (m.bootstrap) g.append(svg('rect', { x: x - 8, y: y - 8, width: 16, height: 16 }));
    else g.append(svg('circle', { cx: x, cy: y, r: 8 }));
    const [lx, ly] = at(f, r + 38 + lift * 30);
    const anchor = lx < cx - 10 ? 'end' : lx > cx + 10 ? 'start' : 'middle';
    const label = `${short(m.id)}${m.bootstrap ? ' (bootstrap)' : ''}`;
    g.append(svg('text', { x: lx, y: ly, 'text-anchor': anchor }, label));
    if (m.records !== undefined)
      g.append(svg('text', { x: lx, y: ly + 13, 'text-anchor': anchor, fill: '#6b7280' }, `${m.records} records`));
    g.append(svg('title', {}, `${m.id}\n${m.addr}`));
    root.append(g);
  });
  root.append(svg('text', { x: cx, y: cy, 'text-anchor': 'middle' }, `${members.length} members`));
  const tbody = $('members').querySelector('tbody');
  tbody.replaceChildren();
  for (const m of members) {
    const tr = el('tr', { 'data-member-id': m.id });
    tr.append(
      el('td', {}, `${short(m.id)}${m.bootstrap ? ' bootstrap' : ''}`),
      el('td', {}, m.addr),
      el('td', {}, `(${short(m.rangeFrom)}, ${short(m.id)}]`),
      el('td', {}, m.records === undefined ? '?' : String(m.records)),
      el('td', {}, short(m.succ)),
    );
    tbody.append(tr);
  }
  $('ring-summary').textContent = ring
    ? `${members.length} members known; successor list ${ring.successors.length}/${ring.replicas}`
    : '';
}

function drawUsers(users, total) {
  const tbody = $('users').querySelector('tbody');
  tbody.replaceChildren();
  for (const u of users || []) {
    const tr = el('tr', { 'data-user': u.name });
    tr.append(el('td', {}, u.name), el('td', {}, u.adapter || ''), el('td', {}, (u.contacts || []).join(', ')));
    tbody.append(tr);
  }
  const shown = (users || []).length;
  $('users-summary').textContent = total > shown ? `${total} registered, first ${shown} shown` : `${shown} registered`;
}

// One call as a ladder: phone -> caller adapter -> callee adapter and back, each arrow at its time.
function ladder(c) {
  const lanes = ['caller phone', `caller adapter ${c.adapter || ''}`, `callee adapter ${c.trace.calleeAdapter || ''}`];
  const xs = [70, 260, 450];
  const t = c.trace;
  const steps = [{ from: 0, to: 1, label: `INVITE sip:${c.callee}`, ms: 0, step: 'phone-invite' }];
  if (t.inviteSentMs !== undefined)
    steps.push({ from: 1, to: 2, label: `SECP2PSIP INVITE (${c.mode})`, ms: t.inviteSentMs, step: 'secp2psip-invite' });
  if (t.redirectMs !== undefined)
    steps.push({ from: 2, to: 1, label: 'SECP2PSIP REDIRECT', ms: t.redirectMs, step: 'secp2psip-redirect' });
  const ok = c.status === 302;
  steps.push({
    from: 1,
    to: 0,
    label: `${c.status} ${ok ? 'Moved Temporarily' : c.reason}`,
    ms: c.ms,
    step: ok ? 'final-302' : 'final',
    final: true,
  });
  const h = 40 + steps.length * 34;
  const root = svg('svg', { class: 'ladder', viewBox: `0 0 540 ${h}`, width: '100%' });
  arrowDefs(root);
  lanes.forEach((name, i) => {
    root.append(svg('text', { x: xs[i], y: 14, 'text-anchor': 'middle' }, name));
    root.append(svg('line', { class: 'lane', x1: xs[i], y1: 20, x2: xs[i], y2: h - 4 }));
  });
  steps.forEach((s, i) => {
    const y = 40 + i * 34;
    const g = svg('g', { class: `msg${s.final ? (ok ? ' final' : ' refused') : ''}`, 'data-step': s.step });
    g.append(svg('line', { x1: xs[s.from], y1: y, x2: xs[s.to] + (s.to > s.from ? -4 : 4), y2: y }));
    g.append(svg('text', { x: (xs[s.from] + xs[s.to]) / 2, y: y - 5, 'text-anchor': 'middle' }, s.label));
    g.append(svg('text', { x: 536, y: y + 4, 'text-anchor': 'end', fill: '#6b7280' }, `${s.ms.toFixed(1)} ms`));
    root.append(g);
  });
  if (t.verifiedMs !== undefined) {
    const y = 40 + (steps.length - 1) * 34 - 17;
    root.append(
      svg(
        'text',
        { class: 'verified', x: xs[1] + 6, y, 'data-step': 'verified' },
        `verified at ${t.verifiedMs.toFixed(1)} ms`,
      ),
    );
  }
  return root;
}

function drawCalls(calls) {
  const box = $('calls');
  box.replaceChildren();
  for (const c of (calls || []).slice(0, 8)) {
    const d = el('div', { class: 'call', 'data-call-id': c.callId, 'data-status': String(c.status) });
    const h = el('h3');
    h.append(
      el('span', {}, `${c.caller} → ${c.callee}`),
      el(
        'span',
        { class: `badge ${c.status === 302 ? 'ok' : 'bad'}` },
        c.status === 302 ? 'verified 302' : `${c.status}${c.code ? ` ${c.code}` : ''}`,
      ),
      el('span', { class: 'meta' }, `${c.mode} mode · ${c.ms.toFixed(1)} ms · ${new Date(c.at).toLocaleTimeString()}`),
    );
    d.append(h, ladder(c));
    if (c.badPieces && c.badPieces.length > 0) {
      const who = c.badPieces.map((i) => `piece ${i} from ${c.badHolders[i] || 'unknown'}`).join('; ');
      d.append(el('div', { class: 'pieces' }, `${c.badPieces.length} bad key piece(s) corrected: ${who}`));
    }
    box.append(d);
  }
  $('calls-summary').textContent = `${(calls || []).length} recent`;
}

function drawWhanau(w) {
  const sec = $('whanau-section');
  sec.hidden = !w;
  if (!w) return;
  const box = $('whanau');
  box.replaceChildren();
  box.append(el('p', {}, `identity ${w.hash}`));
  const peers = el('table');
  peers.append(el('tr'));
  peers.firstChild.append(el('th', {}, 'social peer'), el('th', {}, 'address'), el('th', {}, 'state'));
  for (const p of w.peers) {
    const tr = el('tr', { 'data-peer': p.hash });
    tr.append(el('td', {}, short(p.hash)), el('td', {}, p.addr), el('td', {}, p.active ? 'answering' : 'silent'));
    peers.append(tr);
  }
  box.append(peers);
  const fill =
    Object.entries(w.tables)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'no tables yet';
  box.append(el('p', {}, `table fill: ${fill}`));
  const last = w.setups.last;
  box.append(
    el(
      'p',
      {},
      last
        ? `last SETUP: epoch ${last.epoch}, ${last.ms} ms, at ${new Date(last.at).toLocaleTimeString()}`
        : 'no SETUP yet',
    ),
  );
}

function render(s) {
  $('who').textContent = `${s.role} ${short(s.id)} ${s.sip ? `sip:${s.sip}` : s.addr}`;
  const ready = $('ready');
  ready.textContent = s.ready.ok ? 'ready' : `not ready: ${s.ready.reason}`;
  ready.className = `badge ${s.ready.ok ? 'ok' : 'bad'}`;
  $('ring-section').hidden = !s.ring;
  if (s.ring) drawRing(s.ring);
  $('users-section').hidden = !s.users;
  drawUsers(s.users, s.usersTotal);
  $('calls-section').hidden = !s.calls;
  drawCalls(s.calls);
  drawWhanau(s.whanau);
  document.body.dataset.updated = String(s.at);
}

const live = $('live');
const source = new EventSource('/events');
source.onopen = () => {
  live.textContent = 'live';
  live.className = 'badge ok';
};
source.onerror = () => {
  live.textContent = 'reconnecting';
  live.className = 'badge bad';
};
source.onmessage = (e) => render(JSON.parse(e.data));
