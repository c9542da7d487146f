// admin/console/app.js - the gslbd admin console: a single page over the JSON API (/api/v1).
//
// No framework and no build step: plain DOM, one ES module. Facts that shaped it:
// - The page runs under "script-src 'self'; style-src 'self'": no inline handlers, no eval, no
//   style attributes in markup (style properties set from script through the CSSOM are fine).
// - Everything from the API is inserted as text (textContent, createElement), never as HTML.
// - Writes carry the session's CSRF token in X-CSRF-Token; a 401 anywhere sends the operator to
//   the log-in page and back to where they were afterwards.
// - Live data is short polling: the config version, health and request counters every 2 s, only
//   while the page that shows them is open. Pages with a form the operator is typing into are not
//   redrawn under them: they get a banner instead.
// - The world map is drawn here: an equirectangular SVG with a graticule and one dot per country
//   from GET /countries, so land shows as dot clouds without any shipped map data.

const API = '/api/v1';
const POLL_MS = 2000;
const NAME_RE = /^[a-z0-9][a-z0-9-]*$/;
const CONTINENTS = { AF: 'Africa', AN: 'Antarctica', AS: 'Asia', EU: 'Europe', NA: 'North America', OC: 'Oceania', SA: 'South America' };
const regionNames = typeof Intl !== 'undefined' && Intl.DisplayNames ? new Intl.DisplayNames(['en'], { type: 'region' }) : null;

const app = {
    user: null,
    csrf: null,
    countries: null,
    view: null, // { alive, timers[], onVersion }
    version: null,
    stats: { last: null, sampled: false, rps: new Map(), history: new Map(), errShare: new Map(), unrouted: 0 },
    health: null,
    holds: [],
    live: false,
};

// ---------------------------------------------------------------------------------------------
// DOM helpers

const SVG_NS = 'http://www.w3.org/2000/svg';

function put(el, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'text') el.textContent = String(v);
        else if (k === 'class') el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else if (k === 'dataset') Object.assign(el.dataset, v);
        else if (k === 'value' && 'value' in el) el.value = v;
        else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden') el[k] = !!v;
        else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat(Infinity)) {
        if (c === null || c === undefined || c === false) continue;
        el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
}

// h('p', {class: 'x'}, 'text', child...) builds an HTML element; strings become text nodes.
function h(tag, attrs, ...children) {
    return put(document.createElement(tag), attrs, children);
}

function s(tag, attrs, ...children) {
    return put(document.createElementNS(SVG_NS, tag), attrs, children);
}

function clear(el) {
    while (el.firstChild) el.firstChild.remove();
    return el;
}

const $ = (sel, root = document) => root.querySelector(sel);

// ---------------------------------------------------------------------------------------------
// Formatting

function pad(n) {
    return String(n).padStart(2, '0');
}

function fmtTime(ms) {
    if (ms === null || ms === undefined) return '—';
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function fmtAgo(ms) {
    if (!ms) return '';
    let sec = Math.max(0, Math.round((Date.now() - ms) / 1000));
    if (sec < 60) return `${sec}s ago`;
    if (sec < 3600) return `${Math.floor(sec / 60)}m ago`;
    if (sec < 86400) return `${Math.floor(sec / 3600)}h ${Math.floor((sec % 3600) / 60)}m ago`;
    return `${Math.floor(sec / 86400)}d ago`;
}

function fmtRate(r) {
    if (r === undefined || r === null || Number.isNaN(r)) return '—';
    if (r >= 100) return `${Math.round(r)}/s`;
    if (r >= 10) return `${r.toFixed(1)}/s`;
    return `${r.toFixed(2)}/s`;
}

function fmtKm(km) {
    return km === null || km === undefined ? '—' : `${Math.round(km).toLocaleString('en')} km`;
}

function countryLabel(code) {
    if (!code) return '—';
    try {
        const name = regionNames && regionNames.of(code);
        return name && name !== code ? `${name} (${code})` : code;
    } catch {
        return code;
    }
}

function timeEl(ms) {
    return h('time', { datetime: ms ? new Date(ms).toISOString() : null, title: ms ? new Date(ms).toUTCString() : null, text: fmtTime(ms) });
}

// ---------------------------------------------------------------------------------------------
// The API

class ApiError extends Error {
    constructor(status, message, field, code) {
        super(message);
        this.status = status;
        this.field = field || null;
        this.code = code || null; // gslbd's machine code: auth, csrf, stale, throttled
    }
}

// Calls the API; resolves to the parsed JSON body (null when empty) or throws ApiError.
// opts.headers adds request headers; opts.meta, an object, gets the answer's ETag.
async function api(method, path, body, opts = {}) {
    try {
        return await apiOnce(method, path, body, opts);
    } catch (e) {
        // The session's CSRF token changed (a password change in another tab starts a new
        // session): fetch the current one and try once more.
        if (e instanceof ApiError && e.code === 'csrf' && method !== 'GET') {
            const sess = await apiOnce('GET', '/session', undefined, opts);
            app.csrf = sess.csrf;
            return apiOnce(method, path, body, opts);
        }
        throw e;
    }
}

async function apiOnce(method, path, body, { quiet401 = false, headers: extra = {}, meta = null } = {}) {
    const headers = { Accept: 'application/json', ...extra };
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
        headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    if (method !== 'GET' && app.csrf) headers['X-CSRF-Token'] = app.csrf;
    let res;
    try {
        res = await fetch(API + path, init);
    } catch {
        setLive(false);
        throw new ApiError(0, 'gslbd is not answering; check that it is running.');
    }
    let data = null;
    const text = await res.text();
    if (text) {
        try {
            data = JSON.parse(text);
        } catch {
            data = null;
        }
    }
    if (meta) meta.etag = res.headers.get('ETag');
    if (res.ok) return data;
    const err = data && data.error ? data.error : {};
    let message = err.message || `${res.status} ${res.statusText || 'error'}`;
    if (res.status === 429) message = err.message || 'Too many attempts: wait a moment and try again.';
    const e = new ApiError(res.status, message, err.field, err.code);
    if (res.status === 401 && !quiet401) sessionLost();
    throw e;
}

const enc = encodeURIComponent;

function sessionLost() {
    if (!app.user) return;
    app.user = null;
    app.csrf = null;
    toast('Your session ended: log in again.', true);
    const back = location.hash && !location.hash.startsWith('#/login') ? location.hash : '#/';
    sessionStorage.setItem('gslb-after-login', back);
    location.hash = '#/login';
}

// ---------------------------------------------------------------------------------------------
// Toasts, confirmation, live indicator

function toast(message, isError = false) {
    const t = h('div', { class: ['toast', isError && 'error'], text: message, title: 'Click to dismiss', onclick: () => t.remove() });
    $('#toasts').append(t);
    setTimeout(() => t.remove(), isError ? 7000 : 3500);
}

// Asks for confirmation in a modal dialog; resolves true when confirmed.
function confirmAction(title, text, okLabel, danger = false) {
    const dlg = $('#confirm');
    if (dlg.open) return Promise.resolve(false); // one question at a time (a double click)
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    const ok = $('#confirm-ok');
    ok.textContent = okLabel;
    ok.classList.toggle('danger', danger);
    return new Promise((resolve) => {
        dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
        dlg.returnValue = 'cancel';
        dlg.showModal();
        $('#confirm-cancel').focus();
    });
}

function setLive(on) {
    if (app.live === on) return;
    app.live = on;
    const el = $('#live');
    el.textContent = on ? 'live' : 'offline';
    el.classList.toggle('on', on);
}

// ---------------------------------------------------------------------------------------------
// Forms: fields with their error right below, server errors mapped back to the field they name.

function field(label, input, hint) {
    const id = input.id || `f-${input.name}-${Math.random().toString(36).slice(2, 8)}`;
    input.id = id;
    const err = h('p', { class: 'field-error', id: `${id}-err`, 'aria-live': 'polite' });
    input.setAttribute('aria-describedby', `${id}-err`);
    return h('div', { class: ['field', input.type === 'checkbox' && 'check', input.dataset.wide && 'wide'] },
        input.type === 'checkbox' ? [input, h('label', { for: id, text: label })] : [h('label', { for: id, text: label }), input],
        hint ? h('span', { class: 'hint', text: hint }) : null, err);
}

function input(name, value, attrs = {}) {
    return h('input', { name, value: value === null || value === undefined ? '' : String(value), autocomplete: 'off', ...attrs });
}

function select(name, options, value, attrs = {}) {
    return h('select', { name, ...attrs },
        options.map((o) => {
            const [v, label] = Array.isArray(o) ? o : [o, o];
            return h('option', { value: v, selected: v === value, text: label });
        }));
}

function clearErrors(form) {
    form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
    form.querySelectorAll('.field-error').forEach((el) => (el.textContent = ''));
    const top = form.querySelector('.form-error');
    if (top) top.remove();
}

// Shows <message> under the input called <name> (or at the top of the form when there is none).
function fieldError(form, name, message) {
    const el = name ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
    if (el) {
        el.setAttribute('aria-invalid', 'true');
        const err = document.getElementById(`${el.id}-err`);
        if (err) err.textContent = message;
        return el;
    }
    let top = form.querySelector('.form-error');
    if (!top) {
        top = h('p', { class: 'form-error', role: 'alert' });
        form.prepend(top);
    }
    top.textContent = top.textContent ? `${top.textContent} ${message}` : message;
    return null;
}

// The API names fields as paths ("regions[eu-west].lat", "check.path"): find the input that
// matches the most specific part of it.
function showApiError(form, e) {
    if (!(e instanceof ApiError)) throw e;
    if (e.status === 401 && !e.field) return; // the session ended: sessionLost() took over
    let path = e.field ? String(e.field) : '';
    // A conflict on an add is about the key the operator typed (a name or address in use).
    if (!path && e.status === 409) {
        const key = form.querySelector('[name="name"]:not([readonly]), [name="address"]:not([readonly]), [name="username"]');
        if (key) path = key.name;
    }
    const parts = path.split('.').map((p) => p.replace(/\[.*\]$/, '')).filter(Boolean);
    let shown = null;
    for (let i = parts.length - 1; i >= 0 && !shown; i--) {
        const dotted = parts.slice(i).join('.');
        shown = form.querySelector(`[name="${CSS.escape(dotted)}"]`) ? dotted : form.querySelector(`[name="${CSS.escape(parts[i])}"]`) ? parts[i] : null;
        if (i === parts.length - 1 && !shown && /\]$/.test(path)) {
            // "regions[eu-west]" names a whole object: the message is about its key.
            const key = form.querySelector('[name="name"]:not([readonly]), [name="address"]:not([readonly])');
            shown = key ? key.name : null;
        }
    }
    // Next to the field, the field's path in front of the message says nothing new.
    const message = shown && path && e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message;
    const el = fieldError(form, shown, message);
    if (el) el.focus();
}

// Wires <form> to <submit(values)>: disables the button while the request runs and shows errors.
function onSubmit(form, validate, submit) {
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        clearErrors(form);
        const errors = validate ? validate(form) : [];
        if (errors.length) {
            errors.forEach(([name, msg]) => fieldError(form, name, msg));
            const first = form.querySelector('[aria-invalid="true"]');
            if (first) first.focus();
            return;
        }
        const buttons = form.querySelectorAll('button[type="submit"]');
        buttons.forEach((b) => (b.disabled = true));
        try {
            await submit(form);
        } catch (e) {
            showApiError(form, e);
        } finally {
            buttons.forEach((b) => (b.disabled = false));
        }
    });
}

function val(form, name) {
    const el = form.elements[name];
    if (!el) return undefined;
    if (el.type === 'checkbox') return el.checked;
    return el.value.trim();
}

function checkedValues(form, name) {
    return [...form.querySelectorAll(`input[name="${CSS.escape(name)}"]:checked`)].map((el) => el.value);
}

function listOf(text) {
    return text.split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
}

function numberError(text, lo, hi, what) {
    if (text === '') return `${what} is required.`;
    const n = Number(text);
    if (!Number.isFinite(n)) return `${what} must be a number.`;
    if (n < lo || n > hi) return `${what} must be within [${lo}, ${hi}].`;
    return null;
}

function intError(text, lo, hi, what, optional = true) {
    if (text === '' && optional) return null;
    const n = Number(text);
    if (!Number.isInteger(n)) return `${what} must be a whole number.`;
    if (n < lo || n > hi) return `${what} must be within ${lo}–${hi}.`;
    return null;
}

function nameError(text) {
    if (!text) return 'A name is required.';
    if (text.length > 63) return 'At most 63 characters.';
    if (!NAME_RE.test(text)) return 'Lower-case letters, digits and dashes, starting with a letter or digit.';
    return null;
}

function addressError(text) {
    if (!text) return 'An address is required.';
    if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(text)) return 'Expected ip:port, [ipv6]:port or name:port.';
    const port = Number(text.slice(text.lastIndexOf(':') + 1));
    if (port < 1 || port > 65535) return 'The port must be within 1–65535.';
    return null;
}

// ---------------------------------------------------------------------------------------------
// Shared data: topology, health, request rates

// <meta>, when given, gets the document's ETag (its config version) for an If-Match.
async function loadTopology(meta) {
    const topo = await api('GET', '/topology', undefined, { meta });
    topo.regions = topo.regions || [];
    topo.services = topo.services || [];
    return topo;
}

async function loadCountries() {
    if (app.countries) return app.countries;
    try {
        const data = await api('GET', '/countries');
        app.countries = Array.isArray(data) ? data : data && Array.isArray(data.countries) ? data.countries : [];
    } catch (e) {
        if (e.status === 401) throw e;
        app.countries = [];
    }
    return app.countries;
}

async function loadHealth() {
    const data = await api('GET', '/health');
    app.health = (data && data.objects) || [];
    // Regions held out of a service by manual failback: "SERVICE/REGION", until resumed.
    app.holds = (data && data.holds) || [];
    return app.health;
}

// Health objects are "region SERVICE/REGION" and "origin SERVICE/REGION/ADDRESS".
function parseObject(object) {
    const m = /^(region|origin) ([^/]+)\/([^/]+)(?:\/(.+))?$/.exec(object || '');
    return m ? { kind: m[1], service: m[2], region: m[3], address: m[4] || null } : null;
}

// One status for a region on the map: the operator's state first, then forced health, then
// what the checks say over every service that has a pool there.
function regionStatus(region, health) {
    if (region.state === 'disabled') return 'disabled';
    if (region.state === 'draining') return 'draining';
    if (region.health === 'down') return 'down';
    if (region.health === 'up') return 'up';
    const rows = (health || []).filter((o) => {
        const p = parseObject(o.object);
        return p && p.kind === 'region' && p.region === region.name;
    });
    if (!rows.length) return 'unknown';
    const up = rows.filter((r) => r.up).length;
    return up === rows.length ? 'up' : up === 0 ? 'down' : 'degraded';
}

function originHealth(service, region, address) {
    const row = (app.health || []).find((o) => o.object === `origin ${service}/${region}/${address}`);
    return row || null;
}

// Polls /stats and turns request counters into per-region rates (requests per second).
async function sampleStats() {
    const data = await api('GET', '/stats');
    const now = { time: data.time_ms || Date.now(), counts: new Map(), errors: new Map(), unrouted: (data.unrouted && data.unrouted.requests) || 0 };
    for (const r of data.regions || []) {
        now.counts.set(r.region, r.requests || 0);
        now.errors.set(r.region, (r.by_class && r.by_class['5xx']) || 0);
    }
    const last = app.stats.last;
    if (last && now.time > last.time) {
        app.stats.sampled = true;
        const dt = (now.time - last.time) / 1000;
        // Requests no region could take (503), counted apart from the regions.
        app.stats.unrouted = Math.max(0, (now.unrouted - last.unrouted) / dt);
        for (const [region, count] of now.counts) {
            const before = last.counts.has(region) ? last.counts.get(region) : 0; // none counted yet
            const rate = Math.max(0, (count - before) / dt);
            const errs = Math.max(0, now.errors.get(region) - (last.errors.get(region) || 0));
            app.stats.rps.set(region, rate);
            // Share of 5xx answers over the last interval (null when nothing was asked).
            app.stats.errShare.set(region, count > before ? errs / (count - before) : null);
            const hist = app.stats.history.get(region) || [];
            hist.push(rate);
            if (hist.length > 60) hist.shift();
            app.stats.history.set(region, hist);
        }
    }
    app.stats.last = now;
    return data;
}

function badge(text, cls) {
    return h('span', { class: ['badge', cls || text], text });
}

function sparkline(values) {
    const w = 90;
    const hgt = 22;
    const max = Math.max(1, ...values);
    const pts = values.map((v, i) => `${values.length > 1 ? (i * w) / (values.length - 1) : 0},${(hgt - 2 - (v / max) * (hgt - 4)).toFixed(1)}`);
    return s('svg', { class: 'spark', viewBox: `0 0 ${w} ${hgt}`, 'aria-hidden': 'true' }, s('polyline', { points: pts.join(' ') }));
}

// ---------------------------------------------------------------------------------------------
// The world map

const MAP_TOP = 84; // latitudes shown: 84 N to 60 S (Antarctica holds no clients)
const MAP_BOTTOM = -60;

// Builds an equirectangular map. Returns { el, setRegions, setClient, setPin, onPick }.
function worldMap({ countries = [], label = 'World map' } = {}) {
    const svgEl = s('svg', {
        class: 'map',
        viewBox: `-180 ${-MAP_TOP} 360 ${MAP_TOP - MAP_BOTTOM}`,
        role: 'img',
        'aria-label': label,
        preserveAspectRatio: 'xMidYMid meet',
    });
    const grat = s('g', { 'aria-hidden': 'true' });
    for (let lon = -180; lon <= 180; lon += 30)
        grat.append(s('line', { class: ['grat', lon === 0 && 'major'], x1: lon, x2: lon, y1: -MAP_TOP, y2: -MAP_BOTTOM, 'vector-effect': 'non-scaling-stroke' }));
    for (let lat = -60; lat <= 80; lat += 20)
        grat.append(s('line', { class: ['grat', lat === 0 && 'major'], x1: -180, x2: 180, y1: -lat, y2: -lat, 'vector-effect': 'non-scaling-stroke' }));
    // Land: a soft halo under each country's dot, so that neighbours merge into continents.
    const land = s('g', { class: 'land', 'aria-hidden': 'true' });
    const blurId = `land-blur-${Math.random().toString(36).slice(2, 8)}`;
    const glow = s('g', { class: 'glow', filter: `url(#${blurId})` });
    land.append(s('defs', {}, s('filter', { id: blurId, x: '-50%', y: '-50%', width: '200%', height: '200%' }, s('feGaussianBlur', { stdDeviation: 2.2 }))));
    const dots = s('g', { class: 'dots' });
    for (const c of countries) {
        if (typeof c.lat !== 'number' || typeof c.lon !== 'number' || c.lat < MAP_BOTTOM) continue;
        glow.append(s('circle', { cx: c.lon, cy: -c.lat, r: 4.5 }));
        dots.append(s('circle', { cx: c.lon, cy: -c.lat, r: 1.25, class: `c-${c.continent}` }, s('title', { text: countryLabel(c.code) })));
    }
    land.append(glow, dots);
    const lines = s('g', { class: 'lines' });
    const markers = s('g', { class: 'markers' });
    const client = s('g', { class: 'client' });
    const pin = s('g', { class: 'pins' });
    svgEl.append(grat, land, lines, markers, client, pin);

    // Marker sizes and labels are kept constant on screen: --k is map units per CSS pixel.
    // The view: the whole map, or a zoomed part of it (buttons, ctrl/pinch-wheel, double click).
    const FULL = { x: -180, y: -MAP_TOP, w: 360, h: MAP_TOP - MAP_BOTTOM };
    const vb = { ...FULL };
    const resize = () => {
        const w = svgEl.getBoundingClientRect().width;
        if (w > 0) svgEl.style.setProperty('--k', (vb.w / w).toFixed(4));
    };
    const setView = (x, y, w) => {
        vb.w = Math.max(FULL.w / 16, Math.min(FULL.w, w));
        vb.h = (vb.w * FULL.h) / FULL.w;
        vb.x = Math.max(FULL.x, Math.min(FULL.x + FULL.w - vb.w, x));
        vb.y = Math.max(FULL.y, Math.min(FULL.y + FULL.h - vb.h, y));
        svgEl.setAttribute('viewBox', `${vb.x.toFixed(3)} ${vb.y.toFixed(3)} ${vb.w.toFixed(3)} ${vb.h.toFixed(3)}`);
        svgEl.classList.toggle('zoomed', vb.w < FULL.w);
        resize();
    };
    // Zooms by <f> keeping the map point under (<px>, <py>) (fractions of the view) in place.
    const zoom = (f, px = 0.5, py = 0.5) => {
        const w = Math.max(FULL.w / 16, Math.min(FULL.w, vb.w / f));
        const h = (w * FULL.h) / FULL.w;
        setView(vb.x + px * (vb.w - w), vb.y + py * (vb.h - h), w);
    };
    const at = (ev) => {
        const r = svgEl.getBoundingClientRect();
        return [(ev.clientX - r.left) / r.width, (ev.clientY - r.top) / r.height];
    };
    svgEl.addEventListener('wheel', (ev) => {
        if (!ev.ctrlKey && !ev.metaKey) return; // a plain wheel scrolls the page
        ev.preventDefault();
        zoom(ev.deltaY < 0 ? 1.25 : 0.8, ...at(ev));
    }, { passive: false });
    svgEl.addEventListener('dblclick', (ev) => {
        ev.preventDefault();
        zoom(2, ...at(ev));
    });
    // Dragging pans a zoomed map; a drag is not a click.
    let drag = null;
    let dragged = false;
    svgEl.addEventListener('pointerdown', (ev) => {
        dragged = false;
        if (vb.w < FULL.w && ev.button === 0) drag = { x: ev.clientX, y: ev.clientY, vx: vb.x, vy: vb.y, id: ev.pointerId };
    });
    svgEl.addEventListener('pointermove', (ev) => {
        if (!drag || ev.pointerId !== drag.id) return;
        const dx = ev.clientX - drag.x;
        const dy = ev.clientY - drag.y;
        if (!dragged && Math.hypot(dx, dy) < 4) return;
        if (!dragged) svgEl.setPointerCapture(ev.pointerId);
        dragged = true;
        const k = vb.w / svgEl.getBoundingClientRect().width;
        setView(drag.vx - dx * k, drag.vy - dy * k, vb.w);
    });
    const endDrag = () => (drag = null);
    svgEl.addEventListener('pointerup', endDrag);
    svgEl.addEventListener('pointercancel', endDrag);
    svgEl.addEventListener('click', (ev) => {
        if (dragged) {
            ev.stopPropagation();
            dragged = false;
        }
    }, true);
    const zoomBtn = (label, text, fn) => h('button', { type: 'button', class: 'btn small', 'aria-label': label, title: label, text, onclick: fn });
    const wrap = h('div', { class: 'map-wrap' }, svgEl,
        h('div', { class: 'map-zoom' }, zoomBtn('Zoom in', '+', () => zoom(1.6)), zoomBtn('Zoom out', '−', () => zoom(1 / 1.6)), zoomBtn('Whole world', '⤢', () => setView(FULL.x, FULL.y, FULL.w))));
    if (typeof ResizeObserver !== 'undefined') new ResizeObserver(resize).observe(svgEl);
    requestAnimationFrame(resize);

    const pos = new Map();
    const api_ = {
        el: wrap,
        svg: svgEl,
        zoom,
        // regions: [{name, lat, lon, status, sub, chosen, title}]; onClick(name)
        setRegions(list, onClick) {
            clear(markers);
            pos.clear();
            // Neighbours closer than a label's size: the later one puts its name below the dot.
            const k = Number(svgEl.style.getPropertyValue('--k')) || 0.4;
            const placed = [];
            for (const r of list) {
                const near = placed.some((p) => Math.abs(p.lon - r.lon) < 90 * k && Math.abs(p.lat - r.lat) < 40 * k && !p.below);
                r.below = near;
                placed.push(r);
                pos.set(r.name, [r.lon, -r.lat]);
                const g = s('g', {
                    class: ['marker', `st-${r.status}`, r.chosen && 'chosen', r.busy && 'busy'],
                    transform: `translate(${r.lon} ${-r.lat})`,
                    'data-region': r.name,
                    'data-status': r.status,
                    tabindex: onClick ? 0 : null,
                    role: onClick ? 'button' : null,
                    'aria-label': `${r.name}: ${r.status}${r.sub ? `, ${r.sub}` : ''}`,
                },
                s('title', { text: r.title || `${r.name} — ${r.status}` }),
                s('circle', { class: 'halo' }),
                s('circle', { class: 'dot' }),
                s('text', { class: 'name', dy: r.below ? '1.9em' : '-1.1em', text: r.name }),
                r.sub ? s('text', { class: 'rps', dy: r.below ? '3em' : '1.9em', text: r.sub }) : null);
                if (onClick) {
                    g.addEventListener('click', (ev) => {
                        ev.stopPropagation();
                        onClick(r.name);
                    });
                    g.addEventListener('keydown', (ev) => {
                        if (ev.key === 'Enter' || ev.key === ' ') onClick(r.name);
                    });
                }
                markers.append(g);
            }
        },
        // Client marker and lines to the candidates (the chosen one solid).
        setClient(c, candidates = [], chosen = null) {
            clear(client);
            clear(lines);
            if (!c || typeof c.lat !== 'number' || typeof c.lon !== 'number') return;
            const [x, y] = [c.lon, -c.lat];
            for (const name of candidates) {
                const p = pos.get(name);
                if (!p) continue;
                lines.append(s('line', { class: name === chosen ? 'route-line' : 'cand-line', x1: x, y1: y, x2: p[0], y2: p[1], 'vector-effect': 'non-scaling-stroke', 'data-to': name }));
            }
            // The chosen line goes last so it is drawn over the others.
            const solid = lines.querySelector('.route-line');
            if (solid) lines.append(solid);
            client.setAttribute('transform', `translate(${x} ${y})`);
            client.append(s('circle', { class: 'ring' }), s('circle', { class: 'dot' }), s('text', { dy: '2.2em', text: c.label || 'client' }));
        },
        setPin(lat, lon) {
            clear(pin);
            if (typeof lat === 'number' && typeof lon === 'number' && Number.isFinite(lat) && Number.isFinite(lon))
                pin.append(s('circle', { class: 'pin', cx: lon, cy: -lat }));
        },
        // Clicking the map reports a position (region editor: choose coordinates).
        onPick(fn) {
            svgEl.classList.add('pick');
            svgEl.addEventListener('click', (ev) => {
                const pt = svgEl.createSVGPoint();
                pt.x = ev.clientX;
                pt.y = ev.clientY;
                const m = svgEl.getScreenCTM();
                if (!m) return;
                const p = pt.matrixTransform(m.inverse());
                const lon = Math.max(-180, Math.min(180, p.x));
                const lat = Math.max(-90, Math.min(90, -p.y));
                fn(Math.round(lat * 100) / 100, Math.round(lon * 100) / 100);
            });
        },
    };
    return api_;
}

function legend() {
    return h('div', { class: 'legend', 'aria-label': 'Legend' },
        ['up', 'degraded', 'down', 'draining', 'disabled', 'unknown'].map((k) => h('span', { class: k, text: k })));
}

// ---------------------------------------------------------------------------------------------
// Region and origin actions (one click, then a confirmation)

const REGION_ACTIONS = {
    drain: { label: 'Drain', text: (n) => `Drain ${n}? It takes no new clients; requests in flight finish.`, danger: true },
    disable: { label: 'Disable', text: (n) => `Disable ${n}? It takes no clients at all.`, danger: true },
    enable: { label: 'Enable', text: (n) => `Enable ${n}? It takes clients again as soon as it is healthy.` },
    'force-down': { label: 'Force down', text: (n) => `Mark ${n} down whatever the health checks say?`, danger: true },
    'force-up': { label: 'Force up', text: (n) => `Mark ${n} up whatever the health checks say?`, danger: true },
    resume: { label: 'Resume checks', text: (n) => `Hand ${n} back to the health checks (health: auto) and lift its manual-failback holds?` },
};

// Which actions fit an object's current state and health override.
function actionsFor(obj, activeState, held = false) {
    const out = [];
    const st = obj.state || activeState;
    if (st === activeState) out.push('drain', 'disable');
    else out.push('enable');
    if (st === 'draining') out.push('disable');
    const force = obj.health || 'auto';
    if (force === 'auto') out.push('force-down');
    if (force !== 'auto' || held) out.push('resume');
    return out;
}

// A region that a pool with manual failback holds out until an operator resumes it.
function regionHeld(name) {
    return (app.holds || []).some((hold) => hold.object.split('/')[1] === name);
}

// The manual-failback holds, each with the region's resume action; <after> runs once resumed.
function holdsTable(after) {
    const holds = app.holds || [];
    return h('table', { id: 'holds', class: 'stack' },
        h('thead', {}, h('tr', {}, ['Service', 'Region', 'Held since', 'Reason', 'Action'].map((t) => h('th', { text: t })))),
        h('tbody', {}, holds.map((hold) => {
            const [service, region] = hold.object.split('/');
            return h('tr', { 'data-hold': hold.object },
                h('td', {}, h('a', { href: `#/services/${enc(service)}`, text: service })),
                h('td', {}, h('a', { href: `#/regions/${enc(region)}`, text: region })),
                h('td', {}, timeEl(hold.since_ms), h('div', { class: 'muted small', text: fmtAgo(hold.since_ms) })),
                h('td', { text: hold.reason || '' }),
                h('td', { class: 'actions' }, h('button', {
                    type: 'button',
                    class: 'btn small',
                    'data-action': 'resume',
                    'aria-label': `Resume ${region}`,
                    text: REGION_ACTIONS.resume.label,
                    onclick: async () => {
                        if (await runAction('region', 'resume', region, `/regions/${enc(region)}/state`)) after();
                    },
                })));
        })));
}

async function runAction(kind, action, label, path) {
    const a = REGION_ACTIONS[action];
    const what = kind === 'region' ? `region ${label}` : `origin ${label}`;
    const ok = await confirmAction(`${a.label} ${what}`, a.text(what), a.label, !!a.danger);
    if (!ok) return false;
    try {
        await api('POST', path, { action });
        toast(`${a.label}: ${label} done.`);
        return true;
    } catch (e) {
        if (e.status !== 401) toast(`${a.label} ${label}: ${e.message}`, true);
        return false;
    }
}

function actionButtons(kind, obj, label, path, activeState, after) {
    return h('div', { class: 'btns' },
        actionsFor(obj, activeState, kind === 'region' && regionHeld(obj.name)).map((action) => h('button', {
            type: 'button',
            class: ['btn', 'small', REGION_ACTIONS[action].danger && 'danger'],
            'data-action': action,
            'aria-label': `${REGION_ACTIONS[action].label} ${label}`,
            text: REGION_ACTIONS[action].label,
            onclick: async (ev) => {
                ev.stopPropagation();
                if (await runAction(kind, action, label, path)) after();
            },
        })));
}

// ---------------------------------------------------------------------------------------------
// Pages. Each gets (main, view, params) and draws into main; view.every() registers pollers that
// stop when the page changes.

async function pageDashboard(main, view) {
    const [topo, countries] = await Promise.all([loadTopology(), loadCountries()]);
    await Promise.all([loadHealth().catch(() => null), sampleStats().catch(() => null)]);
    let regions = topo.regions;
    let services = topo.services;
    const map = worldMap({ countries, label: 'Regions on the world map' });
    const matrix = h('div', { class: 'table-wrap' });
    const cards = h('div', { class: 'cards' });
    const tbody = h('tbody');
    const attention = h('div');
    main.append(
        h('div', { class: 'titlebar' }, h('h1', { text: 'Dashboard' }), h('a', { class: 'btn', href: '#/regions/new', text: 'Add region' })),
        cards,
        attention,
        h('section', { class: 'panel' }, h('h2', { text: 'Regions' }), map.el, legend()),
        h('section', { class: 'panel' },
            h('div', { class: 'table-wrap' },
                h('table', { id: 'region-table', class: 'stack' },
                    h('thead', {}, h('tr', {},
                        h('th', { text: 'Region' }), h('th', { class: 'hide-narrow', text: 'Location' }), h('th', { text: 'State' }),
                        h('th', { text: 'Health' }), h('th', { class: 'num', text: 'Requests' }), h('th', { class: 'hide-narrow', text: 'Last 2 min' }),
                        h('th', { text: 'Actions' }))),
                    tbody))),
        h('section', { class: 'panel' }, h('h2', { text: 'Services by region' }), matrix));

    // Which region serves which service right now: the checks' verdict on each pool.
    const drawMatrix = () => {
        const cell = (sv, r) => {
            if (!(sv.pools || []).some((p) => p.region === r.name)) return h('td', { class: 'muted', text: '—' });
            const row = (app.health || []).find((o) => o.object === `region ${sv.name}/${r.name}`);
            const st = r.state !== 'active' ? r.state : row ? (row.up ? 'up' : 'down') : 'unknown';
            return h('td', { 'data-cell': `${sv.name}/${r.name}`, title: row && row.reason ? row.reason : null }, badge(st));
        };
        clear(matrix).append(services.length && regions.length
            ? h('table', { id: 'service-matrix' },
                h('thead', {}, h('tr', {}, h('th', { text: 'Service' }), regions.map((r) => h('th', { text: r.name })))),
                h('tbody', {}, services.map((sv) => h('tr', {},
                    h('td', {}, h('a', { href: `#/services/${enc(sv.name)}`, text: sv.name })), regions.map((r) => cell(sv, r))))))
            : h('p', { class: 'empty', text: 'No service yet.' }));
    };

    const draw = () => {
        drawMatrix();
        const health = app.health || [];
        const statuses = new Map(regions.map((r) => [r.name, regionStatus(r, health)]));
        map.setRegions(regions.map((r) => {
            const rate = rateOf(r.name);
            return {
                name: r.name,
                lat: r.lat,
                lon: r.lon,
                status: statuses.get(r.name),
                sub: rate === undefined ? null : fmtRate(rate),
                busy: rate > 0,
                title: `${r.display_name || r.name} — ${statuses.get(r.name)}${rate !== undefined ? `, ${fmtRate(rate)}` : ''}`,
            };
        }), (name) => (location.hash = `#/regions/${enc(name)}`));

        const total = [...app.stats.rps.values()].reduce((a, b) => a + b, 0);
        const unrouted = app.stats.unrouted || 0;
        const count = (st) => [...statuses.values()].filter((x) => x === st).length;
        const originsDown = health.filter((o) => o.object.startsWith('origin ') && !o.up);
        put(clear(cards), {}, [
            card(String(regions.length), 'regions'),
            card(String(count('up')), 'serving'),
            card(String(count('down') + count('degraded')), 'down or degraded'),
            card(String(count('draining') + count('disabled')), 'draining or disabled'),
            card(app.stats.last ? fmtRate(total) : '—', 'requests, all regions'),
            unrouted > 0 ? card(fmtRate(unrouted), 'no region could serve (503)') : null,
            card(app.version === null ? '—' : String(app.version), 'config version')]);
        clear(attention);
        if (originsDown.length) {
            attention.append(h('div', { class: 'banner', role: 'status' },
                h('strong', { text: `${originsDown.length} origin${originsDown.length > 1 ? 's' : ''} down: ` }),
                originsDown.slice(0, 5).map((o, i) => [i ? '; ' : '', o.object.replace(/^origin /, ''), o.reason ? ` (${o.reason})` : '']),
                originsDown.length > 5 ? ' …' : '', ' ', h('a', { href: '#/health', text: 'Health' })));
        }
        if ((app.holds || []).length) {
            attention.append(h('div', { class: 'banner', role: 'status', id: 'holds-banner' },
                h('strong', { text: `Held out by manual failback until resumed (${app.holds.length}):` }), holdsTable(refresh)));
        }
        clear(tbody);
        if (!regions.length)
            tbody.append(h('tr', {}, h('td', { colspan: 7, class: 'empty' }, 'No region yet. ', h('a', { href: '#/regions/new', text: 'Add the first one.' }))));
        for (const r of regions) {
            const st = statuses.get(r.name);
            const rate = rateOf(r.name);
            tbody.append(h('tr', { class: 'clickable', 'data-region': r.name, onclick: () => (location.hash = `#/regions/${enc(r.name)}`) },
                h('td', { class: 'lead' }, h('strong', { text: r.name }), r.display_name ? h('div', { class: 'muted small', text: r.display_name }) : null),
                h('td', { class: 'hide-narrow muted', text: `${r.lat.toFixed(2)}, ${r.lon.toFixed(2)}` }),
                h('td', { 'data-label': 'State' }, badge(r.state || 'active')),
                h('td', { 'data-label': 'Health' }, badge(st === 'draining' || st === 'disabled' ? healthOnly(r, app.health) : st), r.health && r.health !== 'auto' ? [' ', badge(`forced ${r.health}`, 'forced')] : null),
                h('td', { class: 'num', 'data-label': 'Requests', 'data-rps': r.name }, fmtRate(rate), errorShare(r.name)),
                h('td', { class: 'hide-narrow' }, sparkline(app.stats.history.get(r.name) || [])),
                h('td', { class: 'actions' }, actionButtons('region', r, r.name, `/regions/${enc(r.name)}/state`, 'active', refresh))));
        }
    };
    const refresh = async () => {
        try {
            const t = await loadTopology();
            regions = t.regions;
            services = t.services;
            await loadHealth();
        } catch {
            /* the poller reports */
        }
        if (view.alive) draw();
    };
    draw();
    view.every(POLL_MS, async () => {
        await Promise.all([sampleStats(), loadHealth()]);
        draw();
    });
    view.onVersion = refresh;
}

// Requests per second of <region>: 0 once sampled without traffic, undefined before.
function rateOf(region) {
    if (app.stats.rps.has(region)) return app.stats.rps.get(region);
    return app.stats.sampled ? 0 : undefined;
}

function errorShare(region) {
    const share = app.stats.errShare.get(region);
    if (!share) return null;
    return h('div', { class: ['small', share >= 0.05 ? 'bad' : 'muted'], 'data-errors': region, text: `${(share * 100).toFixed(share < 0.1 ? 1 : 0)}% 5xx` });
}

function healthOnly(region, health) {
    return regionStatus({ ...region, state: 'active' }, health);
}

function card(value, label) {
    return h('div', { class: 'card' }, h('div', { class: 'value', text: value }), h('div', { class: 'label', text: label }));
}

// Regions list
async function pageRegions(main, view) {
    const topo = await loadTopology();
    await loadHealth().catch(() => null);
    const tbody = h('tbody');
    main.append(
        h('div', { class: 'titlebar' }, h('h1', { text: 'Regions' }), h('a', { class: 'btn primary', href: '#/regions/new', text: 'Add region' })),
        h('section', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'regions-list', class: 'stack' },
            h('thead', {}, h('tr', {}, ['Name', 'Display name', 'Latitude', 'Longitude', 'State', 'Health', 'Pools', 'Actions'].map((t) => h('th', { text: t })))),
            tbody))));
    const draw = (t) => {
        clear(tbody);
        if (!t.regions.length) tbody.append(h('tr', {}, h('td', { colspan: 8, class: 'empty', text: 'No region yet.' })));
        for (const r of t.regions) {
            const pools = t.services.filter((sv) => (sv.pools || []).some((p) => p.region === r.name)).length;
            tbody.append(h('tr', { class: 'clickable', 'data-region': r.name, onclick: () => (location.hash = `#/regions/${enc(r.name)}`) },
                h('td', { class: 'lead' }, h('a', { href: `#/regions/${enc(r.name)}`, text: r.name })),
                h('td', { 'data-label': 'Display name', text: r.display_name || '' }),
                h('td', { class: 'num', 'data-label': 'Latitude', text: r.lat }),
                h('td', { class: 'num', 'data-label': 'Longitude', text: r.lon }),
                h('td', { 'data-label': 'State' }, badge(r.state || 'active')),
                h('td', { 'data-label': 'Health' }, badge(healthOnly(r, app.health)), r.health && r.health !== 'auto' ? [' ', badge(`forced ${r.health}`, 'forced')] : null),
                h('td', { class: 'num', 'data-label': 'Pools', text: pools }),
                h('td', { class: 'actions' }, actionButtons('region', r, r.name, `/regions/${enc(r.name)}/state`, 'active', () => view.onVersion()))));
        }
    };
    draw(topo);
    view.onVersion = async () => {
        const t = await loadTopology();
        await loadHealth().catch(() => null);
        if (view.alive) draw(t);
    };
}

// Region editor (new or existing)
async function pageRegion(main, view, params) {
    const isNew = params.name === undefined;
    const [topo, countries] = await Promise.all([loadTopology(), loadCountries()]);
    await loadHealth().catch(() => null);
    const region = isNew ? { name: '', display_name: '', lat: '', lon: '', state: 'active', health: 'auto' } : topo.regions.find((r) => r.name === params.name);
    if (!region) {
        main.append(h('h1', { text: 'No such region' }), h('p', {}, `Region ${params.name} does not exist. `, h('a', { href: '#/regions', text: 'All regions' })));
        return;
    }
    const form = h('form', { class: 'fields cols', novalidate: true, id: 'region-form' },
        field('Name', input('name', region.name, { readonly: !isNew, required: true, maxlength: 63, placeholder: 'eu-west', autocapitalize: 'none', spellcheck: 'false' }), isNew ? 'Lower-case letters, digits and dashes; cannot change later.' : 'Names cannot change.'),
        field('Display name', input('display_name', region.display_name || '', { placeholder: 'Europe (Dublin)' })),
        field('Latitude', input('lat', region.lat, { inputmode: 'decimal', placeholder: '53.35' }), '−90 to 90; or click the map'),
        field('Longitude', input('lon', region.lon, { inputmode: 'decimal', placeholder: '-6.26' }), '−180 to 180'),
        field('State', select('state', [['active', 'active: takes clients'], ['draining', 'draining: no new clients'], ['disabled', 'disabled: no clients']], region.state || 'active')),
        field('Health', select('health', [['auto', 'auto: follow the health checks'], ['up', 'forced up'], ['down', 'forced down']], region.health || 'auto')),
        h('div', { class: 'form-actions wide' },
            h('button', { type: 'submit', class: 'btn primary', text: isNew ? 'Add region' : 'Save region' }),
            h('a', { class: 'btn ghost', href: '#/regions', text: 'Cancel' }),
            isNew ? null : h('button', { type: 'button', class: 'btn danger', text: 'Delete region', onclick: () => deleteRegion(region.name) })));
    const map = worldMap({ countries, label: 'Click to set the region position' });
    const others = topo.regions.filter((r) => r.name !== region.name);
    map.setRegions(others.map((r) => ({ name: r.name, lat: r.lat, lon: r.lon, status: regionStatus(r, app.health) })));
    const syncPin = () => map.setPin(Number(val(form, 'lat')), Number(val(form, 'lon')));
    map.onPick((lat, lon) => {
        form.elements.lat.value = lat;
        form.elements.lon.value = lon;
        syncPin();
    });
    form.elements.lat.addEventListener('input', syncPin);
    form.elements.lon.addEventListener('input', syncPin);
    if (!isNew) syncPin();

    onSubmit(form, (f) => {
        const errs = [];
        const n = nameError(val(f, 'name'));
        if (n) errs.push(['name', n]);
        const la = numberError(val(f, 'lat'), -90, 90, 'Latitude');
        if (la) errs.push(['lat', la]);
        const lo = numberError(val(f, 'lon'), -180, 180, 'Longitude');
        if (lo) errs.push(['lon', lo]);
        return errs;
    }, async (f) => {
        const body = { name: val(f, 'name'), lat: Number(val(f, 'lat')), lon: Number(val(f, 'lon')), state: val(f, 'state'), health: val(f, 'health') };
        if (val(f, 'display_name')) body.display_name = val(f, 'display_name');
        if (isNew) await api('POST', '/regions', body);
        else await api('PUT', `/regions/${enc(region.name)}`, body);
        toast(isNew ? `Region ${body.name} added.` : `Region ${body.name} saved.`);
        view.dirty = false;
        location.hash = '#/regions';
    });
    form.addEventListener('input', () => (view.dirty = true));

    let used = [];
    if (!isNew) used = topo.services.filter((sv) => (sv.pools || []).some((p) => p.region === region.name)).map((sv) => sv.name);
    main.append(
        h('div', { class: 'titlebar' }, h('h1', { text: isNew ? 'Add a region' : `Region ${region.name}` }),
            isNew ? null : actionButtons('region', region, region.name, `/regions/${enc(region.name)}/state`, 'active', () => render())),
        h('div', { class: 'grid2' },
            h('section', { class: 'panel' }, form,
                isNew ? null : h('p', { class: 'muted small' }, used.length ? `Pools here: ${used.join(', ')}. ` : 'No service has a pool here yet. ', h('a', { href: '#/services', text: 'Services' }))),
            h('section', { class: 'panel' }, h('h2', { text: 'Position' }), map.el, h('p', { class: 'muted small', text: 'Click the map to set the latitude and longitude.' }))),
        isNew ? null : regionHealthPanel(region.name, view));
}

// What the checks say about a region, service by service, and its origins there.
function regionHealthPanel(name, view) {
    const tbody = h('tbody');
    const draw = () => {
        const rows = (app.health || []).filter((o) => {
            const p = parseObject(o.object);
            return p && p.region === name;
        }).sort((a, b) => a.object.localeCompare(b.object));
        clear(tbody);
        if (!rows.length) tbody.append(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'No health data for this region yet.' })));
        for (const o of rows) {
            const p = parseObject(o.object);
            tbody.append(h('tr', { 'data-object': o.object },
                h('td', {}, h('span', { class: 'muted small', text: `${p.kind} ` }), h('a', { href: `#/services/${enc(p.service)}`, text: p.service }), p.address ? h('span', { class: 'mono', text: ` ${p.address}` }) : null),
                h('td', {}, badge(o.up ? 'up' : 'down')),
                h('td', {}, timeEl(o.since_ms), h('div', { class: 'muted small', text: fmtAgo(o.since_ms) })),
                h('td', { text: o.reason || '' })));
        }
    };
    draw();
    view.every(POLL_MS, async () => {
        await loadHealth();
        draw();
    });
    return h('section', { class: 'panel' }, h('h2', { text: 'Health here' }),
        h('div', { class: 'table-wrap' }, h('table', { id: 'region-health' }, h('thead', {}, h('tr', {}, ['Object', 'State', 'Since', 'Reason'].map((t) => h('th', { text: t })))), tbody)));
}

async function deleteRegion(name) {
    if (!(await confirmAction(`Delete region ${name}`, `Delete region ${name}? This cannot be undone. A region that pools, rules or fallbacks still use cannot be deleted.`, 'Delete', true))) return;
    try {
        await api('DELETE', `/regions/${enc(name)}`);
        toast(`Region ${name} deleted.`);
        location.hash = '#/regions';
    } catch (e) {
        if (e.status !== 401) toast(e.message, true);
    }
}

// Services list
async function pageServices(main, view) {
    const topo = await loadTopology();
    const tbody = h('tbody');
    main.append(
        h('div', { class: 'titlebar' }, h('h1', { text: 'Services' }), h('a', { class: 'btn primary', href: '#/services/new', text: 'Add service' })),
        h('section', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', {},
            h('thead', {}, h('tr', {}, ['Name', 'Hosts', 'Policy', 'Regions', 'Origins', 'Rules'].map((t) => h('th', { text: t })))),
            tbody))));
    const draw = (t) => {
        clear(tbody);
        if (!t.services.length) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'empty', text: 'No service yet.' })));
        for (const sv of t.services) {
            const pools = sv.pools || [];
            tbody.append(h('tr', { class: 'clickable', 'data-service': sv.name, onclick: () => (location.hash = `#/services/${enc(sv.name)}`) },
                h('td', {}, h('a', { href: `#/services/${enc(sv.name)}`, text: sv.name })),
                h('td', { class: 'mono', text: (sv.hosts || []).join(', ') }),
                h('td', { text: `${sv.policy || 'nearest'}${sv.sticky ? ', sticky' : ''}` }),
                h('td', { text: pools.map((p) => p.region).join(', ') }),
                h('td', { class: 'num', text: pools.reduce((a, p) => a + (p.origins || []).length, 0) }),
                h('td', { class: 'num', text: (sv.rules || []).length })));
        }
    };
    draw(topo);
    view.onVersion = async () => {
        const t = await loadTopology();
        if (view.alive) draw(t);
    };
}

// Service editor: its own fields, its pools and origins, its rules.
async function pageService(main, view, params) {
    const isNew = params.name === undefined;
    const topo = await loadTopology();
    await loadHealth().catch(() => null);
    const svc = isNew ? { name: '', hosts: [], policy: 'nearest', sticky: false, fallback: [], pools: [], rules: [] } : topo.services.find((x) => x.name === params.name);
    if (!svc) {
        main.append(h('h1', { text: 'No such service' }), h('p', {}, `Service ${params.name} does not exist. `, h('a', { href: '#/services', text: 'All services' })));
        return;
    }
    const regionNamesList = topo.regions.map((r) => r.name);
    const form = h('form', { class: 'fields cols', novalidate: true, id: 'service-form' },
        field('Name', input('name', svc.name, { readonly: !isNew, placeholder: 'www', autocapitalize: 'none', spellcheck: 'false' }), isNew ? 'Lower-case letters, digits and dashes.' : 'Names cannot change.'),
        field('Policy', select('policy', [['nearest', 'nearest: by distance from the client'], ['failover', 'failover: in the order of the pools']], svc.policy || 'nearest')),
        field('Hosts', h('textarea', { name: 'hosts', rows: 3, placeholder: 'www.example.com\n*.example.com', spellcheck: 'false', 'data-wide': '1', text: (svc.hosts || []).join('\n') }), 'One per line: an exact name, *.suffix, or * for every host.'),
        field('Fallback regions', input('fallback', (svc.fallback || []).join(', '), { placeholder: regionNamesList.slice(0, 2).join(', ') }), 'For clients with no location, in order, comma-separated.'),
        field('Sticky: the same client keeps the same origin', input('sticky', '', { type: 'checkbox', checked: !!svc.sticky })),
        h('div', { class: 'form-actions wide' },
            h('button', { type: 'submit', class: 'btn primary', text: isNew ? 'Add service' : 'Save service' }),
            h('a', { class: 'btn ghost', href: '#/services', text: 'Cancel' }),
            isNew ? null : h('button', { type: 'button', class: 'btn danger', text: 'Delete service', onclick: () => deleteService(svc.name) })));
    form.querySelector('textarea[name="hosts"]').closest('.field').classList.add('wide');
    onSubmit(form, (f) => {
        const errs = [];
        const n = nameError(val(f, 'name'));
        if (n) errs.push(['name', n]);
        const hosts = listOf(val(f, 'hosts'));
        if (!hosts.length) errs.push(['hosts', 'At least one host is required (use * for every host).']);
        const bad = hosts.find((x) => !/^(\*|(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?)$/.test(x));
        if (bad) errs.push(['hosts', `${bad} is not a host name, *.suffix or *.`]);
        const unknown = listOf(val(f, 'fallback')).find((x) => !regionNamesList.includes(x));
        if (unknown) errs.push(['fallback', `No region is called ${unknown}.`]);
        return errs;
    }, async (f) => {
        const body = { name: val(f, 'name'), hosts: listOf(val(f, 'hosts').toLowerCase()), policy: val(f, 'policy'), sticky: val(f, 'sticky'), fallback: listOf(val(f, 'fallback')) };
        if (isNew) await api('POST', '/services', body);
        else await api('PUT', `/services/${enc(svc.name)}`, body);
        toast(isNew ? `Service ${body.name} added.` : `Service ${body.name} saved.`);
        view.dirty = false;
        if (isNew) location.hash = `#/services/${enc(body.name)}`;
        else render();
    });
    form.addEventListener('input', () => (view.dirty = true));

    main.append(h('div', { class: 'titlebar' }, h('h1', { text: isNew ? 'Add a service' : `Service ${svc.name}` })),
        h('section', { class: 'panel' }, h('h2', { text: 'Settings' }), form));
    if (isNew) return;
    main.append(poolsPanel(svc, topo, view), rulesPanel(svc, topo));
    view.every(POLL_MS, async () => {
        await loadHealth();
        main.querySelectorAll('[data-origin-health]').forEach((td) => {
            const [region, address] = JSON.parse(td.dataset.originHealth);
            fillOriginHealth(td, svc.name, region, address);
        });
    });
}

async function deleteService(name) {
    if (!(await confirmAction(`Delete service ${name}`, `Delete service ${name} with all its pools, origins and rules? This cannot be undone.`, 'Delete', true))) return;
    try {
        await api('DELETE', `/services/${enc(name)}`);
        toast(`Service ${name} deleted.`);
        location.hash = '#/services';
    } catch (e) {
        if (e.status !== 401) toast(e.message, true);
    }
}

function fillOriginHealth(td, service, region, address) {
    const row = originHealth(service, region, address);
    clear(td);
    if (!row) td.append(badge('unknown'));
    else put(td, {}, [badge(row.up ? 'up' : 'down'), row.reason ? h('div', { class: 'muted small', text: row.reason }) : null]);
}

function checkSummary(c) {
    if (!c || !c.type) return 'default';
    if (c.type === 'none') return 'none';
    if (c.type === 'tcp') return 'tcp';
    return `${c.type} ${c.path || '/'}${c.expect ? ` → ${c.expect}` : ''}`;
}

// The pool's own settings: quorum, failback and the check defaults its origins inherit.
function poolSummary(pool) {
    const parts = [`serves with ≥ ${pool.min_healthy || 1} healthy origin${(pool.min_healthy || 1) > 1 ? 's' : ''}`];
    if (pool.min_weight_percent) parts.push(`carrying ≥ ${pool.min_weight_percent}% of the weight`);
    parts.push(`failback ${pool.failback || 'auto'}${pool.holddown_ms ? ` after ${pool.holddown_ms / 1000} s` : ''}`);
    if (pool.check && pool.check.type) parts.push(`origin checks default to ${checkSummary(pool.check)}`);
    return `${parts.join(', ')}.`;
}

// Pool settings have their own route: PUT replaces them (its origins stay as they are), so the
// check defaults this form does not show are sent back as they were.
function poolSettings(svc, pool, view) {
    const c = pool.check || {};
    const form = h('form', { class: 'fields cols', novalidate: true, 'data-pool-form': pool.region },
        field('Minimum healthy origins', input('min_healthy', pool.min_healthy || '', { inputmode: 'numeric', placeholder: '1' })),
        field('Minimum healthy weight (%)', input('min_weight_percent', pool.min_weight_percent || '', { inputmode: 'numeric', placeholder: '0' })),
        field('Failback', select('failback', [['auto', 'auto: back after the hold-down'], ['manual', 'manual: held out until resumed']], pool.failback || 'auto')),
        field('Hold-down (ms)', input('holddown_ms', pool.holddown_ms || '', { inputmode: 'numeric', placeholder: 'gslbd --failback-holddown' })),
        field('Default check type', select('type', [['', 'gslbd default'], ['http', 'http'], ['https', 'https'], ['tcp', 'tcp connect'], ['none', 'none']], c.type || '')),
        field('Default check path', input('path', c.path || '', { placeholder: '/healthz' })),
        field('Default expected status', input('expect', c.expect || '', { placeholder: '200-399' })),
        field('Default interval (ms)', input('interval_ms', c.interval_ms || '', { inputmode: 'numeric', placeholder: 'default' })),
        h('div', { class: 'form-actions wide' }, h('button', { type: 'submit', class: 'btn primary', text: 'Save pool settings' })));
    form.addEventListener('input', () => (view.dirty = true));
    onSubmit(form, (f) => {
        const errs = [];
        for (const [k, lo, hi, what] of [['min_healthy', 0, 1000, 'Minimum healthy origins'], ['min_weight_percent', 0, 100, 'The weight share'], ['holddown_ms', 0, 86400000, 'Hold-down'], ['interval_ms', 100, 3600000, 'Interval']]) {
            const e = intError(val(f, k), lo, hi, what);
            if (e) errs.push([k, e]);
        }
        if (val(f, 'path') && !val(f, 'path').startsWith('/')) errs.push(['path', 'The path starts with /.']);
        if (val(f, 'expect') && !/^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$/.test(val(f, 'expect'))) errs.push(['expect', 'A list of statuses or ranges, e.g. 200-399 or 200,204.']);
        return errs;
    }, async (f) => {
        const p = { region: pool.region };
        for (const k of ['min_healthy', 'min_weight_percent', 'holddown_ms']) if (val(f, k) !== '') p[k] = Number(val(f, k));
        if (val(f, 'failback') === 'manual') p.failback = 'manual';
        const check = { ...(pool.check || {}) };
        for (const k of ['type', 'path', 'expect']) {
            if (val(f, k)) check[k] = val(f, k);
            else delete check[k];
        }
        if (val(f, 'interval_ms')) check.interval_ms = Number(val(f, 'interval_ms'));
        else delete check.interval_ms;
        if (Object.keys(check).length) p.check = check;
        await api('PUT', `/services/${enc(svc.name)}/pools/${enc(pool.region)}`, p);
        toast(`Pool ${svc.name}/${pool.region} saved.`);
        view.dirty = false;
        render();
    });
    return h('details', { class: 'pool-settings' }, h('summary', { text: 'Pool settings: quorum, failback, check defaults' }), form);
}

function poolsPanel(svc, topo, view) {
    const panel = h('section', { class: 'panel', id: 'pools' }, h('h2', { text: 'Pools and origins' }));
    const pools = svc.pools || [];
    if (!pools.length) panel.append(h('p', { class: 'empty', text: 'No origin yet: add one below.' }));
    for (const pool of pools) {
        const tbody = h('tbody');
        for (const o of pool.origins || []) {
            const label = `${pool.region}/${o.address}`;
            const base = `/services/${enc(svc.name)}/pools/${enc(pool.region)}/origins/${enc(o.address)}`;
            const healthTd = h('td', { 'data-label': 'Health', 'data-origin-health': JSON.stringify([pool.region, o.address]) });
            fillOriginHealth(healthTd, svc.name, pool.region, o.address);
            tbody.append(h('tr', { 'data-origin': o.address },
                h('td', { class: 'mono lead', text: o.address }),
                h('td', { class: 'num', 'data-label': 'Weight', text: o.weight === undefined ? 1 : o.weight }),
                h('td', { 'data-label': 'State' }, badge(o.state || 'enabled'), o.health && o.health !== 'auto' ? [' ', badge(`forced ${o.health}`, 'forced')] : null),
                healthTd,
                h('td', { class: 'hide-narrow', text: checkSummary(o.check) }),
                h('td', { class: 'actions' }, h('div', { class: 'btns' },
                    h('button', { type: 'button', class: 'btn small', text: 'Edit', onclick: () => editOrigin(panel, svc, pool.region, o, view) }),
                    actionButtons('origin', o, label, `${base}/state`, 'enabled', () => render()),
                    h('button', { type: 'button', class: 'btn small danger', text: 'Remove', 'aria-label': `Remove ${label}`, onclick: () => removeOrigin(svc.name, pool.region, o.address) })))));
        }
        panel.append(h('h3', {}, 'Region ', h('a', { href: `#/regions/${enc(pool.region)}`, text: pool.region })),
            h('p', { class: 'muted small', 'data-pool-settings': pool.region, text: poolSummary(pool) }),
            poolSettings(svc, pool, view),
            h('div', { class: 'table-wrap' }, h('table', { class: 'stack', 'data-pool': pool.region },
                h('thead', {}, h('tr', {}, ['Address', 'Weight', 'State', 'Health', 'Check', 'Actions'].map((t, i) => h('th', { class: [i === 1 && 'num', i === 4 && 'hide-narrow'], text: t })))),
                tbody)));
    }
    const editor = h('div', { class: 'origin-editor' });
    panel.append(h('h3', { text: 'Add an origin' }), editor);
    editor.append(originForm(svc, topo, null, null, view));
    return panel;
}

function editOrigin(panel, svc, region, origin, view) {
    const editor = panel.querySelector('.origin-editor');
    const heading = editor.previousElementSibling;
    heading.textContent = `Edit origin ${region}/${origin.address}`;
    clear(editor).append(originForm(svc, { regions: [{ name: region }] }, region, origin, view));
    editor.scrollIntoView({ block: 'nearest' });
    const first = editor.querySelector('input[name="weight"]');
    if (first) first.focus();
}

async function removeOrigin(service, region, address) {
    if (!(await confirmAction(`Remove origin ${address}`, `Remove ${address} from the ${region} pool of ${service}? Removing the last origin removes the pool.`, 'Remove', true))) return;
    try {
        await api('DELETE', `/services/${enc(service)}/pools/${enc(region)}/origins/${enc(address)}`);
        toast(`Origin ${address} removed.`);
        render();
    } catch (e) {
        if (e.status !== 401) toast(e.message, true);
    }
}

// The origin form: add (origin null) or edit one origin of <region>.
function originForm(svc, topo, region, origin, view) {
    const o = origin || { address: '', weight: 1, state: 'enabled', health: 'auto', check: {} };
    const c = o.check || {};
    const checkType = select('type', [['', 'default (gslbd --health-checks)'], ['http', 'http'], ['https', 'https'], ['tcp', 'tcp connect'], ['none', 'none']], c.type || '');
    const httpOnly = [];
    const httpField = (label, el, hint) => {
        const f = field(label, el, hint);
        httpOnly.push(f);
        return f;
    };
    const form = h('form', { class: 'fields cols', novalidate: true, id: origin ? 'origin-edit-form' : 'origin-form' },
        origin
            ? field('Region', input('region', region, { readonly: true }))
            : field('Region', select('region', topo.regions.map((r) => r.name), region || (topo.regions[0] && topo.regions[0].name))),
        field('Address', input('address', o.address, { readonly: !!origin, placeholder: '10.0.0.5:8080', autocapitalize: 'none', spellcheck: 'false' }), origin ? null : 'ip:port, [ipv6]:port or name:port'),
        field('Weight', input('weight', o.weight === undefined ? 1 : o.weight, { inputmode: 'numeric' }), '0–1000; 0 takes no traffic'),
        field('State', select('state', ['enabled', 'draining', 'disabled'], o.state || 'enabled')),
        field('Health', select('health', [['auto', 'auto: follow the health checks'], ['up', 'forced up'], ['down', 'forced down']], o.health || 'auto')),
        h('fieldset', { class: 'wide' }, h('legend', { text: 'Health check' }),
            h('div', { class: 'fields cols' },
                field('Type', checkType),
                httpField('Path', input('path', c.path || '', { placeholder: '/healthz' })),
                httpField('Expected status', input('expect', c.expect || '', { placeholder: '200-399' })),
                httpField('Host header', input('host', c.host || '', { placeholder: 'www.example.com' })),
                httpField('Body contains', input('body', c.body || '', {})),
                field('Interval (ms)', input('interval_ms', c.interval_ms || '', { inputmode: 'numeric', placeholder: 'default' })),
                field('Timeout (ms)', input('timeout_ms', c.timeout_ms || '', { inputmode: 'numeric', placeholder: 'default' })),
                field('Rise', input('rise', c.rise || '', { inputmode: 'numeric', placeholder: 'default' })),
                field('Fall', input('fall', c.fall || '', { inputmode: 'numeric', placeholder: 'default' })))),
        h('div', { class: 'form-actions wide' },
            h('button', { type: 'submit', class: 'btn primary', text: origin ? 'Save origin' : 'Add origin' }),
            origin ? h('button', { type: 'button', class: 'btn ghost', text: 'Cancel', onclick: () => render() }) : null));
    const syncCheck = () => httpOnly.forEach((f) => (f.hidden = !['http', 'https'].includes(checkType.value)));
    checkType.addEventListener('change', syncCheck);
    syncCheck();
    if (!topo.regions.length) {
        form.prepend(h('p', { class: 'form-error' }, 'Add a region first. ', h('a', { href: '#/regions/new', text: 'Add region' })));
        form.querySelector('button[type="submit"]').disabled = true;
    }
    form.addEventListener('input', () => (view.dirty = true));
    onSubmit(form, (f) => {
        const errs = [];
        const a = origin ? null : addressError(val(f, 'address'));
        if (a) errs.push(['address', a]);
        const w = intError(val(f, 'weight'), 0, 1000, 'Weight', false);
        if (w) errs.push(['weight', w]);
        for (const [k, lo, hi, what] of [['interval_ms', 100, 3600000, 'Interval'], ['timeout_ms', 10, 600000, 'Timeout'], ['rise', 1, 100, 'Rise'], ['fall', 1, 100, 'Fall']]) {
            const e = intError(val(f, k), lo, hi, what);
            if (e) errs.push([k, e]);
        }
        const type = val(f, 'type');
        if (['http', 'https'].includes(type) && val(f, 'path') && !val(f, 'path').startsWith('/')) errs.push(['path', 'The path starts with /.']);
        if (val(f, 'expect') && !/^\d{3}(-\d{3})?(,\d{3}(-\d{3})?)*$/.test(val(f, 'expect'))) errs.push(['expect', 'A list of statuses or ranges, e.g. 200-399 or 200,204.']);
        return errs;
    }, async (f) => {
        const reg = val(f, 'region');
        const body = { address: origin ? o.address : val(f, 'address'), weight: Number(val(f, 'weight')), state: val(f, 'state'), health: val(f, 'health') };
        const check = {};
        const type = val(f, 'type');
        if (type) check.type = type;
        if (['http', 'https'].includes(type))
            for (const k of ['path', 'expect', 'host', 'body']) if (val(f, k)) check[k] = val(f, k);
        for (const k of ['interval_ms', 'timeout_ms', 'rise', 'fall']) if (val(f, k)) check[k] = Number(val(f, k));
        if (Object.keys(check).length) body.check = check;
        const base = `/services/${enc(svc.name)}/pools/${enc(reg)}/origins`;
        if (origin) await api('PUT', `${base}/${enc(o.address)}`, body);
        else await api('POST', base, body);
        toast(origin ? `Origin ${body.address} saved.` : `Origin ${body.address} added to ${reg}.`);
        view.dirty = false;
        render();
    });
    return form;
}

function ruleText(rule) {
    const m = rule.match || {};
    const [kind, value] = Object.entries(m)[0] || ['?', '?'];
    let what = value;
    if (kind === 'country') what = countryLabel(value);
    if (kind === 'continent') what = `${CONTINENTS[value] || value} (${value})`;
    return [kind, what];
}

function rulesPanel(svc, topo) {
    const tbody = h('tbody');
    (svc.rules || []).forEach((rule, i) => {
        const [kind, what] = ruleText(rule);
        tbody.append(h('tr', { 'data-rule': i },
            h('td', { class: 'num', text: i + 1 }),
            h('td', { text: kind }),
            h('td', { class: 'mono', text: what }),
            h('td', { text: (rule.regions || []).join(' → ') }),
            h('td', {}, h('button', { type: 'button', class: 'btn small danger', text: 'Remove', 'aria-label': `Remove rule ${i + 1}`, onclick: () => removeRule(svc.name, i, `${kind} ${what}`) }))));
    });
    if (!(svc.rules || []).length) tbody.append(h('tr', {}, h('td', { colspan: 5, class: 'empty', text: 'No rule: every client goes by the policy.' })));
    const kind = select('kind', [['country', 'country (ISO code)'], ['continent', 'continent'], ['cidr', 'address range (CIDR)']], 'country');
    const value = input('value', '', { placeholder: 'CN', autocapitalize: 'characters', spellcheck: 'false' });
    kind.addEventListener('change', () => (value.placeholder = { country: 'CN', continent: 'EU', cidr: '203.0.113.0/24' }[kind.value]));
    const form = h('form', { class: 'fields cols', novalidate: true, id: 'rule-form' },
        field('Match', kind),
        field('Value', value, 'ISO country code, continent code (AF AN AS EU NA OC SA) or CIDR'),
        h('div', { class: 'field wide' }, h('span', { class: 'label', text: 'Regions to try first, in this order' }),
            h('div', { class: 'choices', id: 'rule-regions' }, topo.regions.map((r) => h('label', {}, h('input', { type: 'checkbox', name: 'regions', value: r.name }), r.name))),
            h('input', { type: 'hidden', name: 'regions-error', id: 'rule-regions-input' }),
            h('p', { class: 'field-error', id: 'rule-regions-input-err' })),
        h('div', { class: 'form-actions wide' }, h('button', { type: 'submit', class: 'btn primary', text: 'Add rule' })));
    // Keep the order in which the operator ticks regions: that is the order they are tried.
    const order = [];
    form.querySelectorAll('input[name="regions"]').forEach((cb) => cb.addEventListener('change', () => {
        const i = order.indexOf(cb.value);
        if (cb.checked && i < 0) order.push(cb.value);
        if (!cb.checked && i >= 0) order.splice(i, 1);
    }));
    onSubmit(form, (f) => {
        const errs = [];
        const k = val(f, 'kind');
        const v = val(f, 'value');
        if (!v) errs.push(['value', 'A value is required.']);
        else if (k === 'country' && !/^[A-Za-z]{2}$/.test(v)) errs.push(['value', 'A two-letter ISO 3166-1 code, e.g. CN.']);
        else if (k === 'continent' && !CONTINENTS[v.toUpperCase()]) errs.push(['value', 'One of AF AN AS EU NA OC SA.']);
        else if (k === 'cidr' && !/^[0-9a-fA-F:.]+\/\d{1,3}$/.test(v)) errs.push(['value', 'An address range such as 203.0.113.0/24 or 2001:db8::/32.']);
        if (!order.length) errs.push(['regions-error', 'Tick at least one region.']);
        return errs;
    }, async (f) => {
        const k = val(f, 'kind');
        const v = k === 'cidr' ? val(f, 'value') : val(f, 'value').toUpperCase();
        await api('POST', `/services/${enc(svc.name)}/rules`, { match: { [k]: v }, regions: [...order] });
        toast('Rule added.');
        render();
    });
    return h('section', { class: 'panel', id: 'rules' }, h('h2', { text: 'Rules' }),
        h('p', { class: 'muted small', text: 'The most specific match wins (address range, then country, then continent); its regions are tried first, then the rest by the policy.' }),
        h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, h('tr', {}, ['#', 'Match', 'Value', 'Regions', ''].map((t) => h('th', { text: t })))), tbody)),
        h('h3', { text: 'Add a rule' }), form);
}

async function removeRule(service, index, label) {
    if (!(await confirmAction('Remove rule', `Remove rule ${index + 1} (${label}) of ${service}?`, 'Remove', true))) return;
    try {
        await api('DELETE', `/services/${enc(service)}/rules/${index}`);
        toast('Rule removed.');
        render();
    } catch (e) {
        if (e.status !== 401) toast(e.message, true);
    }
}

// Route tester
async function pageRoute(main, view, params) {
    const [topo, countries] = await Promise.all([loadTopology(), loadCountries()]);
    await loadHealth().catch(() => null);
    const map = worldMap({ countries, label: 'Client and regions' });
    const result = h('div', { id: 'route-result', 'aria-live': 'polite' });
    const form = h('form', { class: 'fields cols', novalidate: true, id: 'route-form', role: 'search' },
        field('Client address', input('ip', params.ip || '', { placeholder: '81.2.69.142 or 2001:db8::1', autocapitalize: 'none', spellcheck: 'false', inputmode: 'text' })),
        field('Host (optional)', input('host', params.host || '', { placeholder: 'www.example.com', autocapitalize: 'none', spellcheck: 'false', list: 'known-hosts' }), 'Picks the service; empty: the catch-all service.'),
        h('datalist', { id: 'known-hosts' }, topo.services.flatMap((sv) => (sv.hosts || []).filter((x) => x !== '*').map((x) => h('option', { value: x.replace(/^\*\./, 'www.') })))),
        h('div', { class: 'form-actions wide' }, h('button', { type: 'submit', class: 'btn primary', text: 'Test route' }),
            h('span', { class: 'muted small', text: 'Asks the same decision engine gslbd uses, with the live health.' })),
        h('div', { class: 'form-actions wide small' }, h('span', { class: 'muted', text: 'Try:' }),
            [['81.2.69.142', 'GB'], ['8.8.8.8', 'US'], ['1.1.1.1', 'AU'], ['2001:4860:4860::8888', 'US, IPv6'], ['10.0.0.1', 'private']].map(([ip, what]) =>
                h('button', { type: 'button', class: 'btn small ghost', 'data-example': ip, text: `${ip} (${what})`, onclick: () => {
                    form.elements.ip.value = ip;
                    form.requestSubmit();
                } }))));
    let regions = topo.regions;
    const drawRegions = (chosen) => map.setRegions(regions.map((r) => ({ name: r.name, lat: r.lat, lon: r.lon, status: regionStatus(r, app.health), chosen: r.name === chosen })));
    drawRegions(null);
    main.append(h('h1', { text: 'Route tester' }),
        h('div', { class: 'grid3' },
            h('section', { class: 'panel' }, map.el, legend()),
            h('section', { class: 'panel route-ask' }, form, result)));

    // <want>: the config version the answer must come from. gslbd loads a change a moment after
    // it is stored; an answer from an older snapshot (its config_version says so) is asked
    // again shortly, a few times, rather than shown as the new decision.
    let asked = 0;
    const run = async (ip, host, want = 0, tries = 0) => {
        const me = ++asked;
        if (!tries) clear(result).append(h('p', { class: 'muted', text: 'Asking…' }));
        const q = `ip=${enc(ip)}${host ? `&host=${enc(host)}` : ''}`;
        let r;
        try {
            r = await api('GET', `/route?${q}`);
        } catch (e) {
            clear(result);
            showApiError(form, e);
            map.setClient(null);
            return;
        }
        if (me !== asked || !view.alive) return; // a newer question took over
        if (want && r.config_version < want && tries < 20) {
            setTimeout(() => view.alive && me === asked && run(ip, host, want, tries + 1), 250);
            return;
        }
        const t = await loadTopology().catch(() => null);
        if (t) regions = t.regions;
        await loadHealth().catch(() => null);
        drawRegions(r.region);
        const g = r.geo || {};
        const cands = r.candidates || [];
        map.setClient(typeof g.lat === 'number' ? { lat: g.lat, lon: g.lon, label: g.country ? `client (${g.country})` : 'client' } : null, cands.map((c) => c.region), r.region);
        clear(result).append(
            h('p', { class: ['verdict', !r.region && 'fail'], id: 'route-verdict', 'data-region': r.region || '', 'data-service': r.service || '', 'data-version': r.config_version ?? '' },
                r.region ? ['→ ', r.region, r.origin ? h('span', { class: 'muted small mono', text: `  ${r.origin}` }) : null] : 'No region can serve this client (503).'),
            h('dl', { class: 'kv' },
                h('dt', { text: 'Address' }), h('dd', { class: 'mono', text: r.ip }),
                h('dt', { text: 'Service' }), h('dd', { text: r.service || 'none matches this host' }),
                h('dt', { text: 'Location' }), h('dd', { text: g.status === 'found' ? [countryLabel(g.country), g.subdivision, CONTINENTS[g.continent]].filter(Boolean).join(', ') : `unknown (${g.status || '?'})` }),
                typeof g.lat === 'number' ? [h('dt', { text: 'Coordinates' }), h('dd', { text: `${g.lat.toFixed(2)}, ${g.lon.toFixed(2)}${g.accuracy_km ? ` ±${g.accuracy_km} km` : ''} (${g.location_source || '?'})` })] : null,
                g.asn ? [h('dt', { text: 'Network' }), h('dd', { text: `AS${g.asn}${g.org ? ` ${g.org}` : ''}` })] : null),
            h('h3', { text: 'Candidates, in the order tried' }),
            h('div', { class: 'table-wrap' }, h('table', { id: 'candidates' },
                h('thead', {}, h('tr', {}, ['#', 'Region', 'Distance', 'State', 'Reason'].map((x, i) => h('th', { class: i === 2 && 'num', text: x })))),
                h('tbody', {}, cands.length ? cands.map((c, i) => h('tr', { class: c.region === r.region && 'chosen', 'data-region': c.region },
                    h('td', { text: i + 1 }), h('td', { text: c.region }), h('td', { class: 'num', text: fmtKm(c.distance_km) }),
                    h('td', {}, badge(c.state || '?', c.state)), h('td', { text: c.reason || '' }))) : h('tr', {}, h('td', { colspan: 5, class: 'empty', text: 'No candidate region.' }))))));
    };
    onSubmit(form, (f) => {
        const ip = val(f, 'ip');
        if (!ip) return [['ip', 'Type an IPv4 or IPv6 address.']];
        if (!/^[0-9.]+$/.test(ip) && !/^[0-9a-fA-F:.]+$/.test(ip)) return [['ip', 'Not an IP address.']];
        return [];
    }, async (f) => {
        const ip = val(f, 'ip');
        const host = val(f, 'host');
        // Keep the question in the address, so a reload or a shared link asks it again.
        const want = `#/route?ip=${enc(ip)}${host ? `&host=${enc(host)}` : ''}`;
        if (location.hash !== want) history.replaceState(null, '', want);
        await run(ip, host);
    });
    if (params.ip) run(params.ip, params.host || '');
    else form.elements.ip.focus();
    view.onVersion = async (version) => {
        const ip = val(form, 'ip');
        if (params.ip || ip) await run(ip, val(form, 'host'), version);
    };
}

// Health: the current board and the history of changes
async function pageHealth(main, view) {
    const boardBody = h('tbody');
    const histBody = h('tbody');
    const filter = input('filter', '', { placeholder: 'Filter: region, service, address…', type: 'search' });
    const onlyDown = input('onlydown', '', { type: 'checkbox' });
    const limit = select('limit', ['50', '200', '1000'], '200');
    const holdsPanel = h('section', { class: 'panel', id: 'holds-panel', hidden: true });
    main.append(h('h1', { text: 'Health' }),
        holdsPanel,
        h('div', { class: 'filters' }, field('Filter', filter), field('Only what is down', onlyDown), field('History entries', limit)),
        h('section', { class: 'panel' }, h('h2', { text: 'Now' }), h('div', { class: 'table-wrap' }, h('table', { id: 'health-board' },
            h('thead', {}, h('tr', {}, ['Object', 'State', 'Since', 'Reason'].map((t) => h('th', { text: t })))), boardBody))),
        h('section', { class: 'panel' }, h('h2', { text: 'Changes' }), h('div', { class: 'table-wrap' }, h('table', { id: 'health-history' },
            h('thead', {}, h('tr', {}, ['Time', 'Object', 'Became', 'Reason'].map((t) => h('th', { text: t })))), histBody))));
    let history = [];
    const matches = (row) => {
        const f = filter.value.trim().toLowerCase();
        return (!f || row.object.toLowerCase().includes(f) || (row.reason || '').toLowerCase().includes(f)) && (!onlyDown.checked || !row.up);
    };
    const objectCell = (object) => {
        const p = parseObject(object);
        if (!p) return h('td', { class: 'mono', text: object });
        return h('td', {}, h('span', { class: 'muted small', text: `${p.kind} ` }),
            h('a', { href: `#/services/${enc(p.service)}`, text: p.service }), ' / ',
            h('a', { href: `#/regions/${enc(p.region)}`, text: p.region }), p.address ? [' / ', h('span', { class: 'mono', text: p.address })] : null);
    };
    const draw = () => {
        holdsPanel.hidden = !(app.holds || []).length;
        clear(holdsPanel).append(h('h2', { text: 'Held by manual failback' }),
            h('p', { class: 'muted small', text: 'These regions went down in a pool with manual failback: they take no clients of that service until resumed (and healthy for the hold-down).' }),
            h('div', { class: 'table-wrap' }, holdsTable(() => load())));
        clear(boardBody);
        const board = (app.health || []).filter(matches).sort((a, b) => (a.up - b.up) || a.object.localeCompare(b.object));
        if (!board.length) boardBody.append(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: (app.health || []).length ? 'Nothing matches.' : 'No health data yet: gslbd records it once checks run.' })));
        for (const row of board)
            boardBody.append(h('tr', { 'data-object': row.object }, objectCell(row.object), h('td', {}, badge(row.up ? 'up' : 'down')),
                h('td', {}, timeEl(row.since_ms || row.time_ms), h('div', { class: 'muted small', text: fmtAgo(row.since_ms || row.time_ms) })), h('td', { text: row.reason || '' })));
        clear(histBody);
        const hist = history.filter(matches);
        if (!hist.length) histBody.append(h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'No change recorded.' })));
        for (const row of hist)
            histBody.append(h('tr', {}, h('td', {}, timeEl(row.time_ms || row.since_ms)), objectCell(row.object), h('td', {}, badge(row.up ? 'up' : 'down')), h('td', { text: row.reason || '' })));
    };
    const load = async () => {
        const [, hist] = await Promise.all([loadHealth(), api('GET', `/health/history?limit=${enc(limit.value)}`)]);
        history = (hist && (hist.changes || hist.entries || hist.objects || hist.history)) || (Array.isArray(hist) ? hist : []);
        if (view.alive) draw();
    };
    filter.addEventListener('input', draw);
    onlyDown.addEventListener('change', draw);
    limit.addEventListener('change', load);
    await load();
    view.every(POLL_MS * 2, load);
}

// Audit log with a field-by-field diff of each change
function flatten(value, prefix, out) {
    if (value === null || typeof value !== 'object') {
        out.set(prefix || '(value)', JSON.stringify(value));
        return out;
    }
    if (Array.isArray(value)) {
        if (!value.length) out.set(prefix, '[]');
        value.forEach((v, i) => {
            const key = v && typeof v === 'object' && !Array.isArray(v) ? v.name || v.address || v.region || i : i;
            flatten(v, `${prefix}[${key}]`, out);
        });
        return out;
    }
    const keys = Object.keys(value);
    if (!keys.length) out.set(prefix, '{}');
    for (const k of keys) flatten(value[k], prefix ? `${prefix}.${k}` : k, out);
    return out;
}

function parseMaybe(x) {
    if (x === null || x === undefined) return null;
    if (typeof x !== 'string') return x;
    try {
        return JSON.parse(x);
    } catch {
        return x;
    }
}

function auditDiff(entry) {
    const before = flatten(parseMaybe(entry.before), '', new Map());
    const after = flatten(parseMaybe(entry.after), '', new Map());
    const keys = [...new Set([...before.keys(), ...after.keys()])].filter((k) => before.get(k) !== after.get(k));
    if (!keys.length) return h('p', { class: 'muted', text: entry.before === null && entry.after === null ? 'No object data.' : 'No field changed.' });
    return h('div', { class: 'table-wrap' }, h('table', { class: 'diff' },
        h('thead', {}, h('tr', {}, h('th', { text: 'Field' }), h('th', { text: 'Before' }), h('th', { text: 'After' }))),
        h('tbody', {}, keys.slice(0, 400).map((k) => h('tr', {}, h('td', { text: k }),
            h('td', { class: 'was', text: before.has(k) ? before.get(k) : '—' }), h('td', { class: 'now', text: after.has(k) ? after.get(k) : '—' }))))));
}

// "region eu-west", "service www", "origin www/eu-west/10.0.0.5:80": a link to its page.
function objectLink(object) {
    const m = /^(region|service|origin|pool|rules?) ([^/\s]+)(?:\/([^/\s]+))?/.exec(object || '');
    if (!m) return object || '';
    const href = m[1] === 'region' ? `#/regions/${enc(m[2])}` : `#/services/${enc(m[2])}`;
    return h('a', { href, text: object });
}

async function pageAudit(main, view) {
    const tbody = h('tbody');
    const more = h('button', { type: 'button', class: 'btn', id: 'audit-more', text: 'Older entries' });
    const filter = input('filter', '', { type: 'search', placeholder: 'Filter: actor, action, object…' });
    main.append(h('div', { class: 'titlebar' }, h('h1', { text: 'Audit log' }), h('button', { type: 'button', class: 'btn', text: 'Refresh', onclick: () => render() })),
        h('div', { class: 'filters' }, field('Filter the loaded entries', filter)),
        h('section', { class: 'panel' }, h('div', { class: 'table-wrap' }, h('table', { id: 'audit' },
            h('thead', {}, h('tr', {}, ['#', 'Time', 'Actor', 'Action', 'Object', ''].map((t) => h('th', { text: t })))), tbody)),
        h('div', { class: 'form-actions' }, more)));
    let before = null;
    const entries = [];
    const applyFilter = () => {
        const f = filter.value.trim().toLowerCase();
        tbody.querySelectorAll('tr.entry').forEach((tr) => {
            tr.hidden = !!f && !tr.dataset.search.includes(f);
            const d = tr.nextElementSibling;
            if (d && d.classList.contains('details') && tr.hidden) d.hidden = true;
        });
    };
    const add = (e) => {
        const details = h('tr', { class: 'details', hidden: true }, h('td', { colspan: 6 }));
        const toggle = h('button', { type: 'button', class: 'btn small', text: 'Changes', 'aria-expanded': 'false' });
        const tr = h('tr', { class: 'entry', 'data-id': e.id, 'data-search': `${e.actor} ${e.action} ${e.object}`.toLowerCase() },
            h('td', { class: 'num', text: e.id }), h('td', {}, timeEl(e.time_ms)), h('td', { text: e.actor }),
            h('td', { class: 'mono', text: e.action }), h('td', { class: 'mono' }, objectLink(e.object)), h('td', {}, toggle));
        toggle.addEventListener('click', () => {
            const open = details.hidden;
            if (open && !details.firstChild.firstChild) details.firstChild.append(auditDiff(e));
            details.hidden = !open;
            toggle.setAttribute('aria-expanded', String(open));
        });
        tbody.append(tr, details);
    };
    const load = async () => {
        more.disabled = true;
        const data = await api('GET', `/audit?limit=50${before ? `&before=${enc(before)}` : ''}`);
        for (const e of data.entries || []) {
            entries.push(e);
            add(e);
        }
        before = data.next_before;
        more.hidden = before === null || before === undefined;
        more.disabled = false;
        if (!entries.length) tbody.append(h('tr', {}, h('td', { colspan: 6, class: 'empty', text: 'No change recorded yet.' })));
        applyFilter();
    };
    more.addEventListener('click', () => load().catch((e) => toast(e.message, true)));
    filter.addEventListener('input', applyFilter);
    await load();
    view.onVersion = () => {
        if (before !== null && entries.length <= 50) render();
    };
}

// Topology: the whole document as JSON, to download or replace at once
async function pageTopology(main, view) {
    const meta = {}; // the ETag: replacing checks that nothing changed since this page loaded
    const topo = await loadTopology(meta);
    delete topo.version;
    const text = h('textarea', { name: 'document', class: 'code', spellcheck: 'false', 'data-wide': '1', text: JSON.stringify(topo, null, 2) });
    const form = h('form', { class: 'fields', novalidate: true, id: 'topology-form' },
        field('Topology document (the format of gslbctl export and import)', text),
        h('div', { class: 'form-actions' },
            h('button', { type: 'submit', class: 'btn primary danger', text: 'Replace the topology' }),
            h('a', { class: 'btn', id: 'topology-download', download: 'gslb-topology.json', href: 'data:,', text: 'Download' }),
            h('span', { class: 'muted small', text: 'All or nothing: an invalid document changes nothing.' })));
    const setLink = () => {
        const a = form.querySelector('#topology-download');
        if (a.href.startsWith('blob:')) URL.revokeObjectURL(a.href);
        a.href = URL.createObjectURL(new Blob([text.value], { type: 'application/json' }));
    };
    setLink();
    text.addEventListener('input', () => {
        view.dirty = true;
        setLink();
    });
    onSubmit(form, (f) => {
        try {
            JSON.parse(val(f, 'document'));
        } catch (e) {
            return [['document', `Not JSON: ${e.message}`]];
        }
        return [];
    }, async (f) => {
        if (!(await confirmAction('Replace the topology', 'Replace every region, service, pool, origin and rule with this document?', 'Replace', true))) return;
        const body = JSON.parse(val(f, 'document'));
        try {
            await api('PUT', '/topology', body, { headers: meta.etag ? { 'If-Match': meta.etag } : {} });
        } catch (e) {
            if (e instanceof ApiError && e.code === 'stale') {
                fieldError(f, 'document', 'The configuration changed since this page loaded: nothing was replaced. Reload the page to see the current document, then edit and replace again.');
                return;
            }
            // Errors name their place in the document: show them under the text area.
            if (e instanceof ApiError && e.status !== 401) {
                fieldError(f, 'document', e.field ? `${e.field}: ${e.message.startsWith(e.field) ? e.message.slice(e.field.length).replace(/^:\s*/, '') : e.message}` : e.message);
                return;
            }
            throw e;
        }
        view.dirty = false;
        toast('Topology replaced.');
        render();
    });
    main.append(h('h1', { text: 'Topology' }), h('section', { class: 'panel' }, form));
}

// Users and API tokens
async function pageAccess(main, view) {
    const [users, tokens] = await Promise.all([api('GET', '/users'), api('GET', '/tokens')]);
    const userRows = (users && users.users) || [];
    const tokenRows = (tokens && tokens.tokens) || [];
    const userForm = h('form', { class: 'fields cols', novalidate: true, id: 'user-form' },
        field('Name', input('username', '', { autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false' })),
        field('Password', input('password', '', { type: 'password', autocomplete: 'new-password' }), 'At least 10 characters.'),
        h('div', { class: 'form-actions wide' }, h('button', { type: 'submit', class: 'btn primary', text: 'Add user' })));
    onSubmit(userForm, (f) => {
        const errs = [];
        if (!val(f, 'username')) errs.push(['username', 'A name is required.']);
        if (f.elements.password.value.length < 10) errs.push(['password', 'Use at least 10 characters.']);
        return errs;
    }, async (f) => {
        await api('POST', '/users', { username: val(f, 'username'), password: f.elements.password.value });
        toast(`User ${val(f, 'username')} added.`);
        render();
    });
    const pwForm = h('form', { class: 'fields cols', novalidate: true, id: 'password-form' },
        field('Current password', input('current_password', '', { type: 'password', autocomplete: 'current-password' })),
        field('New password', input('password', '', { type: 'password', autocomplete: 'new-password' }), 'Logs out your other sessions.'),
        field('New password again', input('password2', '', { type: 'password', autocomplete: 'new-password' })),
        h('div', { class: 'form-actions wide' }, h('button', { type: 'submit', class: 'btn primary', text: 'Change my password' })));
    onSubmit(pwForm, (f) => {
        if (!f.elements.current_password.value) return [['current_password', 'Your current password, please.']];
        if (f.elements.password.value.length < 10) return [['password', 'Use at least 10 characters.']];
        if (f.elements.password.value !== f.elements.password2.value) return [['password2', 'The passwords differ.']];
        return [];
    }, async (f) => {
        const r = await api('PUT', `/users/${enc(app.user)}/password`, { current_password: f.elements.current_password.value, password: f.elements.password.value });
        if (r && r.csrf) app.csrf = r.csrf;
        f.reset();
        toast('Password changed.');
    });
    const tokenOut = h('div', { id: 'token-secret', 'aria-live': 'polite' });
    const tokenForm = h('form', { class: 'fields cols', novalidate: true, id: 'token-form' },
        field('Token name', input('name', '', { placeholder: 'deploy-pipeline', autocapitalize: 'none', spellcheck: 'false' }), 'For scripts: send it as Authorization: Bearer TOKEN.'),
        h('div', { class: 'form-actions wide' }, h('button', { type: 'submit', class: 'btn primary', text: 'Create token' })));
    onSubmit(tokenForm, (f) => (val(f, 'name') ? [] : [['name', 'A name is required.']]), async (f) => {
        const r = await api('POST', '/tokens', { name: val(f, 'name') });
        await render();
        const out = document.getElementById('token-secret');
        if (out)
            out.append(h('div', { class: 'banner info' }, h('strong', { text: `Token ${r.name}: ` }), h('code', { class: 'secret', text: r.token }), ' ',
                navigator.clipboard ? h('button', { type: 'button', class: 'btn small', text: 'Copy', onclick: () => navigator.clipboard.writeText(r.token).then(() => toast('Token copied.'), () => toast('Copy it by hand.', true)) }) : null,
                h('div', { class: 'small', text: 'Copy it now: it is not shown again.' })));
    });
    const removeBtn = (label, what, path) => h('button', {
        type: 'button', class: 'btn small danger', text: 'Remove', 'aria-label': `Remove ${label}`,
        onclick: async () => {
            if (!(await confirmAction(`Remove ${label}`, `Remove ${label}? ${what}`, 'Remove', true))) return;
            try {
                await api('DELETE', path);
                toast(`${label} removed.`);
                render();
            } catch (e) {
                if (e.status !== 401) toast(e.message, true);
            }
        },
    });
    main.append(h('h1', { text: 'Users and API tokens' }),
        h('div', { class: 'grid2' },
            h('section', { class: 'panel' }, h('h2', { text: 'Users' }),
                h('div', { class: 'table-wrap' }, h('table', { id: 'users' }, h('thead', {}, h('tr', {}, ['Name', 'Created', ''].map((t) => h('th', { text: t })))),
                    h('tbody', {}, userRows.map((u) => h('tr', { 'data-user': u.name }, h('td', {}, h('strong', { text: u.name }), u.name === app.user ? h('span', { class: 'muted small', text: ' (you)' }) : null),
                        h('td', {}, timeEl(u.created_ms)), h('td', {}, u.name === app.user ? null : removeBtn(`user ${u.name}`, 'Their sessions end at once.', `/users/${enc(u.name)}`))))))),
                h('h3', { text: 'Add a user' }), userForm, h('h3', { text: 'Your password' }), pwForm),
            h('section', { class: 'panel' }, h('h2', { text: 'API tokens' }),
                h('div', { class: 'table-wrap' }, h('table', { id: 'tokens' }, h('thead', {}, h('tr', {}, ['Name', 'Created', 'Last used', ''].map((t) => h('th', { text: t })))),
                    h('tbody', {}, tokenRows.length ? tokenRows.map((t) => h('tr', { 'data-token': t.id }, h('td', {}, h('strong', { text: t.name }), h('div', { class: 'muted small', text: `by ${t.created_by}` })),
                        h('td', {}, timeEl(t.created_ms)), h('td', {}, t.last_used_ms ? timeEl(t.last_used_ms) : 'never'),
                        h('td', {}, removeBtn(`token ${t.name}`, 'Scripts using it are refused at once.', `/tokens/${enc(t.id)}`)))) : h('tr', {}, h('td', { colspan: 4, class: 'empty', text: 'No token.' }))))),
                tokenOut, h('h3', { text: 'Create a token' }), tokenForm)));
}

// First run: creates the first administrator
async function pageSetup(main) {
    const form = h('form', { class: 'fields', novalidate: true, id: 'setup-form' },
        field('Administrator name', input('username', 'admin', { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' })),
        field('Password', input('password', '', { type: 'password', autocomplete: 'new-password' }), 'At least 10 characters.'),
        field('Password again', input('password2', '', { type: 'password', autocomplete: 'new-password' })),
        h('button', { type: 'submit', class: 'btn primary', text: 'Create administrator' }));
    onSubmit(form, (f) => {
        const errs = [];
        if (!val(f, 'username')) errs.push(['username', 'A name is required.']);
        if (f.elements.password.value.length < 10) errs.push(['password', 'Use at least 10 characters.']);
        else if (f.elements.password.value !== f.elements.password2.value) errs.push(['password2', 'The passwords differ.']);
        return errs;
    }, async (f) => {
        const r = await api('POST', '/setup', { username: val(f, 'username'), password: f.elements.password.value }, { quiet401: true });
        await loggedIn(r, val(f, 'username'));
    });
    main.append(h('div', { class: 'auth' }, h('section', { class: 'panel' },
        h('h1', { text: 'Welcome to gslb' }),
        h('p', { class: 'muted', text: 'No administrator exists yet. Create the first one: this page disappears afterwards.' }), form)));
    form.elements.password.focus();
}

async function pageLogin(main) {
    const form = h('form', { class: 'fields', novalidate: true, id: 'login-form' },
        field('Name', input('username', '', { autocomplete: 'username', autocapitalize: 'none', spellcheck: 'false' })),
        field('Password', input('password', '', { type: 'password', autocomplete: 'current-password' })),
        h('button', { type: 'submit', class: 'btn primary', text: 'Log in' }));
    onSubmit(form, (f) => {
        const errs = [];
        if (!val(f, 'username')) errs.push(['username', 'Your name, please.']);
        if (!f.elements.password.value) errs.push(['password', 'Your password, please.']);
        return errs;
    }, async (f) => {
        try {
            const r = await api('POST', '/login', { username: val(f, 'username'), password: f.elements.password.value }, { quiet401: true });
            await loggedIn(r, val(f, 'username'));
        } catch (e) {
            if (e instanceof ApiError && (e.status === 401 || e.status === 403)) {
                f.elements.password.value = '';
                throw new ApiError(e.status, e.message && !/^40\d/.test(e.message) ? e.message : 'Wrong name or password.', 'password');
            }
            throw e;
        }
    });
    main.append(h('div', { class: 'auth' }, h('section', { class: 'panel' }, h('h1', { text: 'Log in to gslb' }), form)));
    form.elements.username.focus();
}

async function loggedIn(r, name) {
    clear($('#toasts')); // "log in again" and the like are answered now
    app.user = (r && r.user) || name;
    app.csrf = r && r.csrf;
    if (!app.csrf) {
        const sess = await api('GET', '/session');
        app.user = sess.user || app.user;
        app.csrf = sess.csrf;
    }
    const back = sessionStorage.getItem('gslb-after-login');
    sessionStorage.removeItem('gslb-after-login');
    location.hash = back && !/^#\/(login|setup)/.test(back) ? back : '#/';
    render();
}

// ---------------------------------------------------------------------------------------------
// Router

const ROUTES = [
    [/^\/?$/, 'dashboard', pageDashboard],
    [/^\/regions$/, 'regions', pageRegions],
    [/^\/regions\/new$/, 'regions', pageRegion],
    [/^\/regions\/([^/]+)$/, 'regions', pageRegion, ['name']],
    [/^\/services$/, 'services', pageServices],
    [/^\/services\/new$/, 'services', pageService],
    [/^\/services\/([^/]+)$/, 'services', pageService, ['name']],
    [/^\/route$/, 'route', pageRoute],
    [/^\/health$/, 'health', pageHealth],
    [/^\/audit$/, 'audit', pageAudit],
    [/^\/topology$/, 'topology', pageTopology],
    [/^\/access$/, 'access', pageAccess],
];

function parseHash() {
    const raw = location.hash.replace(/^#/, '') || '/';
    const [path, query] = raw.split('?');
    const params = {};
    for (const [k, v] of new URLSearchParams(query || '')) params[k] = v;
    return { path, params };
}

function newView() {
    if (app.view) {
        app.view.alive = false;
        app.view.timers.forEach(clearInterval);
    }
    const view = {
        alive: true,
        dirty: false,
        timers: [],
        onVersion: null,
        every(ms, fn) {
            let busy = false;
            this.timers.push(setInterval(async () => {
                if (busy || !view.alive || document.hidden) return;
                busy = true;
                try {
                    await fn();
                    setLive(true);
                } catch (e) {
                    if (e instanceof ApiError && e.status === 0) setLive(false);
                } finally {
                    busy = false;
                }
            }, ms));
        },
    };
    app.view = view;
    return view;
}

let renderSeq = 0;

async function render() {
    const seq = ++renderSeq;
    const main = $('#main');
    const view = newView();
    const { path, params } = parseHash();
    try {
        if (!app.user) {
            try {
                const sess = await api('GET', '/session', undefined, { quiet401: true });
                app.user = sess.user;
                app.csrf = sess.csrf;
            } catch (e) {
                if (!(e instanceof ApiError) || e.status !== 401) throw e;
            }
        }
        if (seq !== renderSeq) return;
        if (!app.user) {
            showChrome(false);
            const setup = await api('GET', '/setup', undefined, { quiet401: true })
                .catch((e) => (e && e.code === 'setup_local' ? { needed: true, refused: e.message } : { needed: false }));
            if (seq !== renderSeq) return;
            clear(main);
            if (setup && setup.needed) {
                if (path !== '/setup') history.replaceState(null, '', '#/setup');
                if (setup.refused) {
                    main.append(h('div', { class: 'auth' }, h('section', { class: 'panel' },
                        h('h1', { text: 'Welcome to gslb' }), h('p', { id: 'setup-refused', text: setup.refused }))));
                } else {
                    await pageSetup(main, view);
                }
            } else {
                if (path !== '/login') {
                    if (path !== '/setup' && !sessionStorage.getItem('gslb-after-login')) sessionStorage.setItem('gslb-after-login', location.hash || '#/');
                    history.replaceState(null, '', '#/login');
                }
                await pageLogin(main, view);
            }
            return;
        }
        if (path === '/login' || path === '/setup') {
            location.hash = '#/';
            return;
        }
        showChrome(true);
        const route = ROUTES.find(([re]) => re.test(path));
        document.querySelectorAll('#nav a').forEach((a) => {
            const current = !!route && a.dataset.section === route[1];
            a.classList.toggle('current', current);
            if (current) a.setAttribute('aria-current', 'page');
            else a.removeAttribute('aria-current');
        });
        if (!route) {
            clear(main).append(h('h1', { text: 'Not found' }), h('p', {}, 'No such page. ', h('a', { href: '#/', text: 'Dashboard' })));
            return;
        }
        const m = route[0].exec(path);
        (route[3] || []).forEach((k, i) => (params[k] = decodeURIComponent(m[i + 1])));
        // The page is drawn off-screen and swapped in whole; pages keep <page> for their pollers.
        const page = h('div', { class: 'page' });
        await route[2](page, view, params);
        if (seq !== renderSeq) return;
        main.replaceChildren(page);
        document.title = `${main.querySelector('h1') ? main.querySelector('h1').textContent : 'gslb'} · gslb console`;
        setLive(true);
    } catch (e) {
        if (seq !== renderSeq) return;
        if (e instanceof ApiError && e.status === 401) return; // sessionLost() moved to the log-in page
        clear(main).append(h('h1', { text: 'Something went wrong' }),
            h('p', { class: 'form-error', text: e.message || String(e) }),
            h('p', {}, h('button', { type: 'button', class: 'btn', text: 'Try again', onclick: () => render() })));
        if (!(e instanceof ApiError)) console.error(e);
    }
}

function showChrome(on) {
    $('#nav').hidden = !on;
    $('#session').hidden = !on;
    $('#whoami').textContent = on && app.user ? app.user : '';
}

// The config version is watched on every page: a change made elsewhere (gslbctl, another
// operator) refreshes lists and the map, and warns on pages with unsaved edits.
async function watchVersion() {
    if (!app.user || document.hidden) return;
    try {
        const v = await api('GET', '/version');
        setLive(true);
        const version = v && v.config_version;
        if (app.version !== null && version !== app.version && app.view && app.view.alive) {
            if (app.view.onVersion && !app.view.dirty) await app.view.onVersion(version);
            else if (app.view.dirty && !$('#stale')) {
                const banner = h('div', { class: 'banner info', id: 'stale', role: 'status' },
                    `The configuration changed elsewhere (version ${version}). `,
                    h('button', { type: 'button', class: 'btn small', text: 'Reload this page', onclick: () => render() }));
                $('#main').prepend(banner);
            }
        }
        app.version = version;
    } catch (e) {
        if (e instanceof ApiError && e.status === 0) setLive(false);
    }
}

async function logout() {
    try {
        await api('POST', '/logout', {});
    } catch {
        /* the session is gone either way */
    }
    app.user = null;
    app.csrf = null;
    sessionStorage.removeItem('gslb-after-login');
    location.hash = '#/login';
    render();
}

// replaceState (the route tester keeps its question in the address) does not fire hashchange.
window.addEventListener('hashchange', () => render());
document.addEventListener('DOMContentLoaded', () => {
    $('#logout').addEventListener('click', logout);
    render();
    setInterval(watchVersion, POLL_MS);
});
