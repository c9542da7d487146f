// tests/console/test_console.mjs - the admin console in a real browser against a real gslbd:
// first-run setup, log-in, the dashboard map with live request rates, adding a region (with
// validation messages next to the fields) and an origin, draining a region and watching the route
// tester fail over, the audit entry of that drain, escaping of operator text, the phone layout and
// the CSP, pool settings saved through their own route, and a manual-failback hold shown and
// resumed. Screenshots of every page land in $GSLB_BUILD/artifacts/console/.
import { assert, cleanup, gslbctl, launchBrowser, log, run, screenshot, startGslbd, startOrigin, test, until, watchPage } from './lib.mjs';

const PASSWORD = 'console-test-password';
const problems = []; // console errors, page errors, CSP violations
let gs; // gslbd
let page;
let spareOrigin;
let usOrigin;

test('gslbd starts with the console embedded, behind its CSP', async () => {
    const [eu, us] = await Promise.all([startOrigin('eu-west'), startOrigin('us-east')]);
    usOrigin = us;
    spareOrigin = await startOrigin('ap-south');
    gs = await startGslbd({
        regions: [
            { name: 'eu-west', display_name: 'Europe (Dublin)', lat: 53.35, lon: -6.26, state: 'active' },
            { name: 'us-east', display_name: 'US East', lat: 39.04, lon: -77.49, state: 'active' },
        ],
        services: [{
            name: 'www', hosts: ['*'], policy: 'nearest', sticky: false, fallback: ['eu-west'],
            pools: [{ region: 'eu-west', origins: [{ address: eu.address }] }, { region: 'us-east', origins: [{ address: us.address }] }],
            rules: [],
        }],
    });
    log(`gslbd admin on ${gs.base}, proxy on ${gs.proxy}`);
    const res = await fetch(`${gs.base}/`);
    assert(res.ok, `GET / answered ${res.status}`);
    const csp = res.headers.get('content-security-policy') || '';
    assert(/script-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp), `CSP header: ${csp}`);
    const html = await res.text();
    assert(html.includes('app.js') && html.includes('app.css'), 'index.html references app.js and app.css');
    for (const asset of ['/app.js', '/app.css']) {
        const r = await fetch(`${gs.base}${asset}`);
        assert(r.ok && r.headers.get('etag'), `${asset}: ${r.status}, ETag ${r.headers.get('etag')}`);
        const again = await fetch(`${gs.base}${asset}`, { headers: { 'If-None-Match': r.headers.get('etag') } });
        assert(again.status === 304, `${asset} with its ETag: ${again.status}, expected 304`);
    }
});

test('first run: the setup page creates the administrator and logs in', async () => {
    const ctx = await launchBrowser();
    page = ctx.pages()[0] || (await ctx.newPage());
    watchPage(page, problems);
    await page.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
    });
    await page.goto(`${gs.base}/`);
    await page.waitForSelector('#setup-form');
    await screenshot(page, '01-setup');
    // Too short a password is refused next to the field, before anything is sent.
    await page.fill('#setup-form [name=password]', 'short');
    await page.click('#setup-form button[type=submit]');
    const err = await page.textContent('#setup-form [name=password] ~ .field-error');
    assert(/10 characters/.test(err), `password error: ${err}`);
    await page.fill('#setup-form [name=password]', PASSWORD);
    await page.fill('#setup-form [name=password2]', PASSWORD);
    await page.click('#setup-form button[type=submit]');
    await page.waitForSelector('#region-table');
    assert((await page.textContent('#whoami')) === 'admin', 'logged in as admin');
    const setup = await (await fetch(`${gs.base}/api/v1/setup`)).json();
    assert(setup.needed === false, 'setup is no longer needed');
});

test('log out, a wrong password is refused, the right one logs in', async () => {
    await page.click('#logout');
    await page.waitForSelector('#login-form');
    await page.fill('#login-form [name=username]', 'admin');
    await page.fill('#login-form [name=password]', 'not the password');
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#login-form [aria-invalid="true"]');
    await screenshot(page, '02-login-refused');
    await page.fill('#login-form [name=password]', PASSWORD);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#region-table');
});

test('dashboard: both regions on the map, up, with live request rates', async () => {
    await page.waitForSelector('svg.map .marker[data-region="eu-west"]');
    await page.waitForSelector('svg.map .marker[data-region="us-east"]');
    await until('both regions up on the map', async () =>
        (await page.getAttribute('.marker[data-region="eu-west"]', 'data-status')) === 'up' &&
        (await page.getAttribute('.marker[data-region="us-east"]', 'data-status')) === 'up', 10000, 200);
    // Traffic through the proxy shows up as requests per second (clients on loopback have no
    // location, so they go to the fallback region eu-west).
    const end = Date.now() + 5000;
    let sent = 0;
    while (Date.now() < end && sent < 400) {
        await Promise.all(Array.from({ length: 10 }, () => fetch(`${gs.proxy}/`).then((r) => r.text())));
        sent += 10;
        const rate = await page.textContent('td[data-rps="eu-west"]');
        if (rate && parseFloat(rate) > 0) break;
    }
    await until('a request rate for eu-west', async () => parseFloat((await page.textContent('td[data-rps="eu-west"]')) || '0') > 0, 6000, 200)
        .catch(async (e) => {
            const stats = await page.evaluate(() => fetch('/api/v1/stats').then((r) => r.text()));
            throw new Error(`${e.message}; sent ${sent}; /stats: ${stats}`);
        });
    await screenshot(page, '03-dashboard');
    // Services by region: each pool's verdict.
    await until('the www/eu-west pool up in the matrix', async () => /up/.test(await page.textContent('#service-matrix [data-cell="www/eu-west"]')), 5000, 100);
    // Zoom in on Europe and back: markers keep their size, the view changes.
    const full = await page.getAttribute('svg.map', 'viewBox');
    await page.click('button[aria-label="Zoom in"]');
    await page.click('button[aria-label="Zoom in"]');
    const zoomed = await page.getAttribute('svg.map', 'viewBox');
    assert(zoomed !== full && Number(zoomed.split(' ')[2]) < 200, `zoomed view: ${zoomed}`);
    const before = (await (await page.$('.marker[data-region="eu-west"] .dot')).boundingBox()).width;
    assert(before > 8 && before < 30, `marker stays small on screen: ${before}px`);
    await page.click('button[aria-label="Whole world"]');
    assert((await page.getAttribute('svg.map', 'viewBox')).split(' ')[2] === '360.000', 'back to the whole world');
});

test('add a region: validation next to the fields, then it appears on the map', async () => {
    await page.click('a[href="#/regions/new"]');
    await page.waitForSelector('#region-form');
    // Clicking the map places the region: the middle of the map is near 0° N, 0° E.
    const box = await (await page.$('#region-form ~ * svg.map, .page svg.map')).boundingBox();
    await page.mouse.click(box.x + box.width / 2, box.y + box.height * (84 / 144));
    const [lat, lon] = [Number(await page.inputValue('#region-form [name=lat]')), Number(await page.inputValue('#region-form [name=lon]'))];
    assert(Math.abs(lat) < 3 && Math.abs(lon) < 3, `map click gave ${lat}, ${lon}`);
    assert(await page.$('svg.map circle.pin'), 'a pin marks the spot');
    // Client-side checks
    await page.fill('#region-form [name=name]', 'AP South');
    await page.fill('#region-form [name=lat]', '95');
    await page.fill('#region-form [name=lon]', '72.88');
    await page.click('#region-form button[type=submit]');
    assert(/Lower-case/.test(await page.textContent('#region-form [name=name] ~ .field-error')), 'name error shown');
    assert(/\[-90, 90\]/.test(await page.textContent('#region-form [name=lat] ~ .field-error')), 'latitude error shown');
    await screenshot(page, '04-region-invalid');
    // The server's refusal lands next to the field it names: a name that exists already.
    await page.fill('#region-form [name=name]', 'eu-west');
    await page.fill('#region-form [name=lat]', '19.07');
    await page.click('#region-form button[type=submit]');
    await page.waitForSelector('#region-form [aria-invalid="true"]');
    const serverErr = await page.evaluate(() => [...document.querySelectorAll('#region-form .field-error, #region-form .form-error')].map((e) => e.textContent).join(' '));
    assert(/eu-west|exist/i.test(serverErr), `duplicate name refused: ${serverErr}`);
    // Operator text is shown as text, never as markup.
    await page.fill('#region-form [name=name]', 'ap-south');
    await page.fill('#region-form [name=display_name]', '<img src=x onerror="window.pwned=1">Mumbai');
    await page.click('#region-form button[type=submit]');
    await page.waitForSelector('#region-form', { state: 'detached' });
    await page.goto(`${gs.base}/#/`);
    await page.waitForSelector('.marker[data-region="ap-south"]');
    const row = await page.textContent('#region-table tr[data-region="ap-south"]');
    assert(row.includes('<img src=x'), `display name shown as text: ${row}`);
    assert(!(await page.evaluate(() => window.pwned)), 'no script ran from operator text');
    assert((await page.$$('#region-table img')).length === 0, 'no element made from operator text');
});

test('add an origin in the new region; its health check brings the region up', async () => {
    await page.goto(`${gs.base}/#/services/www`);
    await page.waitForSelector('#origin-form');
    await page.selectOption('#origin-form [name=region]', 'ap-south');
    await page.fill('#origin-form [name=address]', 'not an address');
    await page.click('#origin-form button[type=submit]');
    assert(/ip:port/.test(await page.textContent('#origin-form [name=address] ~ .field-error')), 'address error shown');
    await page.fill('#origin-form [name=address]', spareOrigin.address);
    await page.fill('#origin-form [name=weight]', '5');
    await page.click('#origin-form button[type=submit]');
    await page.waitForSelector(`table[data-pool="ap-south"] tr[data-origin="${spareOrigin.address}"]`);
    await until('the new origin reported up', async () =>
        (await page.textContent(`table[data-pool="ap-south"] tr[data-origin="${spareOrigin.address}"] [data-origin-health]`)).includes('up'), 10000, 200);
    await screenshot(page, '05-service');
    await page.goto(`${gs.base}/#/`);
    await until('ap-south up on the map', async () => (await page.getAttribute('.marker[data-region="ap-south"]', 'data-status')) === 'up', 10000, 200);
});

test('pool settings: manual failback and a quorum, saved and shown', async () => {
    await page.goto(`${gs.base}/#/services/www`);
    await page.click('[data-pool-form="ap-south"] >> xpath=..//summary');
    const form = '[data-pool-form="ap-south"]';
    await page.fill(`${form} [name=min_weight_percent]`, '150');
    await page.click(`${form} button[type=submit]`);
    assert(/within 0–100/.test(await page.textContent(`${form} [name=min_weight_percent] ~ .field-error`)), 'percent checked');
    await page.fill(`${form} [name=min_weight_percent]`, '50');
    await page.selectOption(`${form} [name=failback]`, 'manual');
    await page.click(`${form} button[type=submit]`);
    await until('the pool summary says manual failback', async () => /failback manual/.test(await page.textContent('[data-pool-settings="ap-south"]')), 5000, 100);
    const doc = JSON.parse(gslbctl(gs.db, ['export']));
    const pool = doc.services[0].pools.find((p) => p.region === 'ap-south');
    assert(pool.failback === 'manual' && pool.min_weight_percent === 50, `stored pool: ${JSON.stringify(pool)}`);
    assert(pool.origins.length === 1 && pool.origins[0].weight === 5, 'origins untouched');
    // Saved through the pool's own route, not by replacing the whole document.
    const audit = await page.evaluate(async () => (await fetch('/api/v1/audit?limit=1')).json());
    assert(audit.entries[0].action === 'pool.set' && audit.entries[0].object === 'pool www/ap-south', `last audit entry: ${JSON.stringify(audit.entries[0])}`);
});

test('route tester: a client in Great Britain goes to eu-west', async () => {
    await page.goto(`${gs.base}/#/route`);
    await page.waitForSelector('#route-form');
    await page.fill('#route-form [name=ip]', '81.2.69.142');
    await page.click('#route-form button[type=submit]');
    await page.waitForSelector('#route-verdict');
    assert((await page.getAttribute('#route-verdict', 'data-region')) === 'eu-west', `verdict: ${await page.textContent('#route-verdict')}`);
    assert(await page.$('svg.map .client'), 'client marker drawn');
    assert(await page.$('svg.map .route-line[data-to="eu-west"]'), 'line from the client to eu-west');
    const loc = await page.textContent('#route-result dl');
    assert(/GB/.test(loc), `location shows the country: ${loc}`);
    const first = await page.textContent('#candidates tbody tr:first-child');
    assert(/eu-west/.test(first) && /km/.test(first), `first candidate: ${first}`);
    await screenshot(page, '06-route-eu-west');
    // One click on an example: a private address has no location and takes the fallback.
    await page.click('button[data-example="10.0.0.1"]');
    await until('the private address answered', async () => (await page.inputValue('#route-form [name=ip]')) === '10.0.0.1' &&
        /10\.0\.0\.1/.test(await page.textContent('#route-result dl')), 5000, 100);
    assert((await page.getAttribute('#route-verdict', 'data-region')) === 'eu-west', 'fallback region eu-west');
    assert(!(await page.$('svg.map .client circle')), 'no client marker without a location');
    const reasons = await page.$$eval('#candidates tbody tr', (trs) => trs.map((t) => t.lastElementChild.textContent));
    log(`reasons without a location: ${reasons.join(', ')}`);
});

test('drain eu-west from the dashboard (with confirmation); the route tester fails over', async () => {
    await page.goto(`${gs.base}/#/`);
    await page.waitForSelector('#region-table tr[data-region="eu-west"] button[data-action="drain"]');
    // Cancelling changes nothing.
    await page.click('#region-table tr[data-region="eu-west"] button[data-action="drain"]');
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-cancel');
    await page.waitForSelector('#confirm[open]', { state: 'detached' });
    assert((await page.getAttribute('.marker[data-region="eu-west"]', 'data-status')) === 'up', 'still up after cancel');
    await page.click('#region-table tr[data-region="eu-west"] button[data-action="drain"]');
    await page.waitForSelector('#confirm[open]');
    await screenshot(page, '07-confirm-drain');
    await page.click('#confirm-ok');
    await until('eu-west draining on the map', async () => (await page.getAttribute('.marker[data-region="eu-west"]', 'data-status')) === 'draining', 5000, 100);
    // gslbd applies a commit to its decisions within 250 ms: ask again until it has.
    await page.goto(`${gs.base}/#/route?ip=81.2.69.142`);
    await until('a failed-over verdict', async () => {
        await page.click('#route-form button[type=submit]');
        await page.waitForSelector('#route-verdict');
        const r = await page.getAttribute('#route-verdict', 'data-region');
        return r && r !== 'eu-west' ? r : null;
    }, 5000, 300);
    const region = await page.getAttribute('#route-verdict', 'data-region');
    assert(region === 'us-east', `after the drain GB goes to ${region}`);
    const euRow = await page.textContent('#candidates tr[data-region="eu-west"]');
    assert(/drain/i.test(euRow), `eu-west candidate says it drains: ${euRow}`);
    await screenshot(page, '08-route-failover');
    // Traffic follows: a GB client through the proxy is answered by us-east.
});

test('audit log: the drain is there, by admin, with the state change', async () => {
    await page.goto(`${gs.base}/#/audit`);
    await page.waitForSelector('#audit tr.entry');
    const row = page.locator('#audit tr.entry', { hasText: 'eu-west' }).first();
    const text = await row.textContent();
    assert(/admin/.test(text), `actor admin: ${text}`);
    await row.locator('button').click();
    const diff = await page.locator('#audit tr.details:not([hidden])').first().textContent();
    assert(/state/.test(diff) && /draining/.test(diff) && /active/.test(diff), `diff shows active → draining: ${diff}`);
    await screenshot(page, '09-audit');
});

test('health page and a region page list the checked origins and regions', async () => {
    await page.goto(`${gs.base}/#/health`);
    await page.waitForSelector('#health-board tr[data-object]');
    const rows = await page.$$eval('#health-board tr[data-object]', (trs) => trs.map((t) => t.dataset.object));
    assert(rows.some((o) => o.startsWith('origin www/ap-south/')), `ap-south origin in the board: ${rows.join(', ')}`);
    await screenshot(page, '10-health');
    // A region's own page shows its share of the board.
    await page.goto(`${gs.base}/#/regions/ap-south`);
    await page.waitForSelector('#region-health tr[data-object="region www/ap-south"]');
    await screenshot(page, '10-region');
});

test('add a service matched by host, give it an origin; the route tester picks it by host', async () => {
    await page.goto(`${gs.base}/#/services/new`);
    await page.waitForSelector('#service-form');
    await page.fill('#service-form [name=name]', 'api');
    await page.fill('#service-form [name=hosts]', 'api.example.com/v1');
    await page.fill('#service-form [name=fallback]', 'nowhere');
    await page.click('#service-form button[type=submit]');
    assert(/not a host name/.test(await page.textContent('#service-form [name=hosts] ~ .field-error')), 'host error shown');
    assert(/No region/.test(await page.textContent('#service-form [name=fallback] ~ .field-error')), 'fallback error shown');
    await page.fill('#service-form [name=hosts]', 'API.example.com');
    await page.fill('#service-form [name=fallback]', '');
    await page.click('#service-form button[type=submit]');
    await page.waitForSelector('#origin-form');
    await page.selectOption('#origin-form [name=region]', 'us-east');
    await page.fill('#origin-form [name=address]', spareOrigin.address);
    await page.click('#origin-form button[type=submit]');
    await page.waitForSelector(`table[data-pool="us-east"] tr[data-origin="${spareOrigin.address}"]`);
    await page.goto(`${gs.base}/#/route?ip=81.2.69.142&host=api.example.com`);
    await until('the api service chosen by host', async () => {
        await page.click('#route-form button[type=submit]');
        await page.waitForSelector('#route-verdict');
        return (await page.getAttribute('#route-verdict', 'data-service')) === 'api' && (await page.getAttribute('#route-verdict', 'data-region')) === 'us-east';
    }, 5000, 300).catch(async (e) => {
        throw new Error(`${e.message}: ${await page.textContent('#route-result')}`);
    });
});

test('a country rule sends GB to ap-south; removing it (confirmed) sends GB back', async () => {
    await page.goto(`${gs.base}/#/services/www`);
    await page.waitForSelector('#rule-form');
    await page.fill('#rule-form [name=value]', 'GBR');
    await page.click('#rule-form button[type=submit]');
    assert(/two-letter/.test(await page.textContent('#rule-form [name=value] ~ .field-error')), 'country code checked');
    assert(/at least one region/.test(await page.textContent('#rule-regions-input-err')), 'regions required');
    await page.fill('#rule-form [name=value]', 'gb');
    await page.check('#rule-form input[name=regions][value="ap-south"]');
    await page.click('#rule-form button[type=submit]');
    await page.waitForSelector('#rules tr[data-rule="0"]');
    assert(/GB/.test(await page.textContent('#rules tr[data-rule="0"]')), 'rule listed with its country');
    const verdict = async () => {
        await page.click('#route-form button[type=submit]');
        await page.waitForSelector('#route-verdict');
        return page.getAttribute('#route-verdict', 'data-region');
    };
    await page.goto(`${gs.base}/#/route?ip=81.2.69.142`);
    await until('GB sent to ap-south by the rule', async () => (await verdict()) === 'ap-south', 5000, 300);
    await screenshot(page, '11-route-rule');
    await page.goto(`${gs.base}/#/services/www`);
    await page.click('#rules tr[data-rule="0"] button');
    await page.click('#confirm-ok');
    await page.waitForSelector('#rules tr[data-rule="0"]', { state: 'detached' });
    await page.goto(`${gs.base}/#/route?ip=81.2.69.142`);
    await until('GB back on us-east', async () => (await verdict()) === 'us-east', 5000, 300);
});

test('an ended session sends the operator to log in, then back to the same page', async () => {
    await page.goto(`${gs.base}/#/health`);
    await page.waitForSelector('#health-board');
    // End the session behind the page's back, as an expiry or a log-out elsewhere would.
    await page.evaluate(async () => {
        const s = await (await fetch('/api/v1/session')).json();
        await fetch('/api/v1/logout', { method: 'POST', headers: { 'X-CSRF-Token': s.csrf, 'Content-Type': 'application/json' }, body: '{}' });
    });
    await page.waitForSelector('#login-form', { timeout: 8000 });
    await page.fill('#login-form [name=username]', 'admin');
    await page.fill('#login-form [name=password]', PASSWORD);
    await page.click('#login-form button[type=submit]');
    await page.waitForSelector('#health-board');
    assert(new URL(page.url()).hash === '#/health', `back on ${page.url()}`);
});

test('phone layout: no sideways scrolling, map and tables fit', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [hash, sel, shot] of [['#/', '#region-table', '11-phone-dashboard'], ['#/route?ip=8.8.8.8', '#route-verdict', '12-phone-route'],
        ['#/services/www', '#pools', '13-phone-service'], ['#/regions', '#regions-list', '13-phone-regions'], ['#/regions/new', '#region-form', null],
        ['#/health', '#health-board', null], ['#/audit', '#audit', null], ['#/topology', '#topology-form', null], ['#/access', '#users', null]]) {
        await page.goto(`${gs.base}/${hash}`);
        await page.waitForSelector(sel);
        const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert(over <= 0, `${hash} overflows by ${over} px`);
        if (shot) await screenshot(page, shot);
    }
    await page.setViewportSize({ width: 1280, height: 860 });
});

test('topology page: an invalid document is refused with the field named, nothing changes', async () => {
    await page.goto(`${gs.base}/#/topology`);
    await page.waitForSelector('#topology-form');
    const before = gslbctl(gs.db, ['export']);
    const text = await page.inputValue('#topology-form [name=document]');
    const doc = JSON.parse(text);
    doc.regions[0].lat = 123;
    await page.fill('#topology-form [name=document]', JSON.stringify(doc, null, 2));
    await page.click('#topology-form button[type=submit]');
    await page.click('#confirm-ok');
    await page.waitForSelector('#topology-form [aria-invalid="true"]');
    const err = await page.textContent('#topology-form .field-error');
    assert(/lat/.test(err) && /123/.test(err), `error names the field: ${err}`);
    // Compared whole: a substring test for "123" also matched random origin ports.
    assert(gslbctl(gs.db, ['export']) === before, 'nothing stored');
    await screenshot(page, '14-topology-refused');
});

test('users page: add a user and create an API token that works once shown', async () => {
    await page.goto(`${gs.base}/#/access`);
    await page.waitForSelector('#user-form');
    await page.fill('#user-form [name=username]', 'ops');
    await page.fill('#user-form [name=password]', 'another-long-password');
    await page.click('#user-form button[type=submit]');
    await page.waitForSelector('#users tr[data-user="ops"]');
    await page.fill('#token-form [name=name]', 'ci');
    await page.click('#token-form button[type=submit]');
    const token = (await page.waitForSelector('#token-secret code')).textContent();
    const res = await fetch(`${gs.base}/api/v1/version`, { headers: { Authorization: `Bearer ${await token}` } });
    assert(res.ok, `the token authenticates: ${res.status}`);
    await screenshot(page, '15-users');
});

test('live updates: a change made with gslbctl shows on the open dashboard', async () => {
    await page.goto(`${gs.base}/#/`);
    await page.waitForSelector('.marker[data-region="ap-south"]');
    gslbctl(gs.db, ['--actor', 'cli:test', 'region', 'set', 'ap-south', '--state', 'disabled']);
    await until('ap-south disabled on the map without a reload', async () => (await page.getAttribute('.marker[data-region="ap-south"]', 'data-status')) === 'disabled', 5000, 100);
    await screenshot(page, '16-dashboard-live');
});

test('drain an origin from its service page (confirmed); the store says draining', async () => {
    await page.goto(`${gs.base}/#/services/www`);
    const row = `table[data-pool="us-east"] tr[data-origin="${usOrigin.address}"]`;
    await page.click(`${row} button[data-action="drain"]`);
    await page.waitForSelector('#confirm[open]');
    assert((await page.textContent('#confirm-text')).includes(usOrigin.address), 'the question names the origin');
    await page.click('#confirm-ok');
    await until('the origin badge says draining', async () => /draining/.test(await page.textContent(row)), 5000, 100);
    const doc = JSON.parse(gslbctl(gs.db, ['export']));
    const o = doc.services.find((x) => x.name === 'www').pools.find((p) => p.region === 'us-east').origins[0];
    assert(o.state === 'draining', `stored origin: ${JSON.stringify(o)}`);
    await page.click(`${row} button[data-action="enable"]`);
    await page.click('#confirm-ok');
    await until('the origin enabled again', async () => /enabled/.test(await page.textContent(row)), 5000, 100);
});

test('an origin dies: its region turns orange on the map (degraded) and the health history records it', async () => {
    await page.goto(`${gs.base}/#/`);
    await page.waitForSelector('.marker[data-region="us-east"]');
    process.kill(usOrigin.child.pid, 'SIGKILL');
    // www's pool there is down; api's (another origin) is still up: the region is degraded.
    await until('us-east degraded on the map', async () => (await page.getAttribute('.marker[data-region="us-east"]', 'data-status')) === 'degraded', 8000, 100);
    await until('www down in us-east in the matrix', async () => /down/.test(await page.textContent('#service-matrix [data-cell="www/us-east"]')), 3000, 100);
    assert(/up/.test(await page.textContent('#service-matrix [data-cell="api/us-east"]')), 'api still up in us-east');
    await screenshot(page, '17-dashboard-origin-down');
    await page.goto(`${gs.base}/#/health`);
    await page.waitForSelector('#health-history tr');
    await until('the change in the history', async () => /us-east/.test(await page.textContent('#health-history')) && /down/.test(await page.textContent('#health-history')), 6000, 300);
    await screenshot(page, '18-health-history');
});

test('deleting a region still in use is refused with gslbd\'s reason; nothing is deleted', async () => {
    await page.goto(`${gs.base}/#/regions/ap-south`);
    await page.waitForSelector('#region-form');
    await page.click('#region-form button.danger');
    await page.waitForSelector('#confirm[open]');
    await page.click('#confirm-ok');
    const msg = await (await page.waitForSelector('.toast.error')).textContent();
    log(`refusal: ${msg}`);
    assert(/ap-south|use|referenc/i.test(msg), `refusal says why: ${msg}`);
    assert(JSON.parse(gslbctl(gs.db, ['export'])).regions.some((r) => r.name === 'ap-south'), 'ap-south still there');
});

test('manual failback: a region that went down is held, shown on the dashboard and health page, and resumed', async () => {
    // www's ap-south pool fails back by hand (set above): its only origin dies, gslbd holds it.
    process.kill(spareOrigin.child.pid, 'SIGKILL');
    await page.goto(`${gs.base}/#/`);
    const held = '#holds tr[data-hold="www/ap-south"]';
    await page.waitForSelector(held, { timeout: 12000 });
    await screenshot(page, '19-dashboard-held');
    await page.goto(`${gs.base}/#/health`);
    await page.waitForSelector(`#holds-panel ${held}`);
    assert((await page.textContent(`${held} td:nth-child(4)`)).trim() !== '', 'the hold says why');
    await screenshot(page, '20-health-held');
    await page.click(`${held} button[data-action="resume"]`);
    await page.waitForSelector('#confirm[open]');
    assert((await page.textContent('#confirm-text')).includes('ap-south'), 'the question names the region');
    await page.click('#confirm-ok');
    await until('the hold gone from the health page', async () => !(await page.$(held)), 5000, 100);
    const health = await page.evaluate(async () => (await fetch('/api/v1/health')).json());
    assert(health.holds.length === 0, `holds after resume: ${JSON.stringify(health.holds)}`);
});

test('no console error, page error or CSP violation', async () => {
    assert(problems.length === 0, problems.join('\n'));
});

run({ timeoutMs: 100000 }).catch(async (e) => {
    console.log(`not ok - harness: ${e.message}`);
    await cleanup();
    process.exit(1);
});
