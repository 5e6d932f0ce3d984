// depin-monitor status page: draws itself from the read-only JSON API (/api/v1/, docs/api.md)
// and refreshes every REFRESH_MS while the tab is visible; its helpers are common.js's. No
// dependencies, nothing fetched from anywhere but this server.
"use strict";

const DAYS = 90;

const pct = (x, digits = 2) => (x == null ? "–" : `${(x * 100).toFixed(digits)} %`);
const byName = (list) => Object.fromEntries(list.map((x) => [x.name, x]));

// -- the daily bars --------------------------------------------------------------------------

function barLabel(day) {
  if (day.runs === 0) return `${day.date}: no runs`;
  const parts = [`${day.date}: ${pct(day.availability)} available`,
    `${count(day.ok)} ok of ${count(day.ok + day.failed)} runs`];
  const aside = Object.entries(day.set_aside).map(([o, n]) => `${count(n)} ${o}`);
  if (aside.length) parts.push(`set aside: ${aside.join(", ")}`);
  if (day.maintenance) parts.push(`${count(day.maintenance)} in maintenance`);
  return parts.join("; ");
}

function bars(days, objective) {
  const list = el("ol", { class: "bars", "aria-label": `Availability per UTC day, last ${days.length} days` });
  for (const day of days) {
    const label = barLabel(day);
    list.append(el("li", { class: `bar ${barClass(day, objective)}`, title: label,
      "aria-label": label }));
  }
  return list;
}

function periodAvailability(days) {
  let ok = 0, judged = 0;
  for (const d of days) { ok += d.ok; judged += d.ok + d.failed; }
  return judged ? ok / judged : null;
}

// -- the TTFT sparkline ----------------------------------------------------------------------

function sparkline(points) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  const seen = points.filter((p) => p.p95_s != null);
  const top = Math.max(...seen.map((p) => p.p95_s), 0.001);
  const line = (key, cls) => {
    const xy = [];
    points.forEach((p, i) => {
      if (p[key] == null) return;
      const x = points.length > 1 ? (i / (points.length - 1)) * 100 : 50;
      xy.push(`${x.toFixed(2)},${(29 - (p[key] / top) * 27).toFixed(2)}`);
    });
    if (xy.length === 1) {  // one step with data: a short dash ending at it, not a dot off the edge
      const [x, y] = xy[0].split(",").map(Number);
      xy.unshift(`${Math.max(0, x - 3).toFixed(2)},${y.toFixed(2)}`);
    }
    const pl = document.createElementNS(SVG, "polyline");
    pl.setAttribute("points", xy.join(" "));
    if (cls) pl.setAttribute("class", cls);
    svg.append(pl);
  };
  line("p50_s", "p50");
  line("p95_s", null);
  const last = seen.length ? seen[seen.length - 1] : null;
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", seen.length
    ? `TTFT p95 over the last 24 hours: ${secs(Math.min(...seen.map((p) => p.p95_s)))} to ` +
      `${secs(top)}, latest ${secs(last.p95_s)} (dashed: p50)`
    : "TTFT over the last 24 hours: no runs with a first token");
  return { svg, latest: last ? last.p95_s : null };
}

// -- one card per network --------------------------------------------------------------------

function figure(label, value, cls) {
  return el("div", { class: `figure ${cls || ""}` },
    el("span", { class: "label" }, label), el("span", { class: "value" }, value));
}

// Certificate checks off is said loudly; else the version and the earliest expiry.
function tlsLine(tls) {
  if (!tls.verified) {
    return el("p", { class: "tls bad" }, el("strong", {}, "TLS NOT VERIFIED"),
      " (tls.insecure): anyone on the path can pose as this network");
  }
  const parts = [tls.version || "TLS"];
  if (tls.certificate_expires_at != null) {
    const days = (tls.certificate_expires_at - Date.now() / 1000) / 86400;
    parts.push(`certificate until ${utc(tls.certificate_expires_at).slice(0, 10)} ` +
      `(${days < 0 ? "EXPIRED" : `${Math.floor(days)} d left`})`);
  }
  return el("p", { class: `tls ${tls.expires_soon ? "bad" : ""}` }, parts.join(", "));
}

// Model equality: is the network serving the model it claims? Its latest verdict per
// comparison (docs/equality.md); "differs" is a flag to investigate, not proof.
function equalityLine(e) {
  const p = e.p_value == null ? "" : `p = ${e.p_value.toPrecision(2)}, `;
  const said = e.verdict === "differs" ? `DIFFERS from ${e.reference}` :
    e.verdict === "same as reference" ? `same as ${e.reference}` :
    `not enough samples to compare with ${e.reference}`;
  const row = e.differs_in_a_row > 1 ? `, ${e.differs_in_a_row} tests in a row` : "";
  return el("p", { class: `equality ${e.verdict === "differs" ? "bad" : ""}` },
    `Model ${e.model}: `, e.verdict === "differs" ? el("strong", {}, said) : said,
    ` (${p}${e.samples}/${e.reference_samples} samples${row}, ${utc(e.tested_at)})`);
}

// Output quality: does the network answer as well as its reference on the same items? Its
// latest audit per comparison (docs/quality.md): both accuracies and the difference with its
// 95 % interval.
function qualityLine(q) {
  const worse = q.verdict === "worse than reference";
  const pts = (v) => `${v >= 0 ? "+" : ""}${(100 * v).toFixed(0)}`;
  const said = worse ? `WORSE than ${q.reference}` : q.verdict === "not worse" ?
    `not worse than ${q.reference}` : `not enough items to compare with ${q.reference}`;
  const figures = q.accuracy == null ? `${q.pairs} of ${q.items} items answered` :
    `${pct(q.accuracy, 0)} vs ${pct(q.reference_accuracy, 0)} correct, ` +
    `${pts(q.difference)} points [${pts(q.difference_ci[0])}, ${pts(q.difference_ci[1])}], ` +
    `${q.pairs} items`;
  const row = q.consecutive_worse > 1 ? `, ${q.consecutive_worse} audits in a row` : "";
  return el("p", { class: `quality ${worse ? "bad" : ""}` },
    `Answers of ${q.model}: `, worse ? el("strong", {}, said) : said,
    ` (${figures}${row}, ${utc(q.audited_at)})`);
}

// Fingerprint: did the model behind the name change? The latest run per model
// (docs/fingerprint.md); "changed" is a flag to investigate, not proof.
function fingerprintLine(f) {
  const bad = f.changed_on.length > 0 || f.verdict === "differs from reference";
  const said = f.changed_on.length ? `CHANGED on ${f.changed_on[f.changed_on.length - 1]}` :
    f.verdict === "differs from reference" ?
      `DIFFERS from ${f.reference_network || "its reference"}` :
    f.verdict === "same" ? "unchanged" : f.verdict;
  const tv = f.distance == null ? "" : `TV ${f.distance.toFixed(3)}, `;
  return el("p", { class: `fingerprint ${bad ? "bad" : ""}` },
    `Fingerprint of ${f.model}: `, bad ? el("strong", {}, said) : said,
    ` (${tv}${f.requests} requests, ${utc(f.tested_at)})`);
}

// The share of the month's error budget left; once overspent, by how many budgets.
function budget(left) {
  if (left == null) return "–";
  if (left >= 0) return pct(left, 0);
  const spent = 1 - left;
  return `overspent ${spent < 10 ? spent.toFixed(1) : Math.round(spent)}×`;
}

function card(net, daily, ttft, sla) {
  const objective = sla && sla.slis.find((s) => s.sli === "availability");
  const target = objective ? objective.target : 0.99;
  const head = el("header", {},
    el("h3", {}, el("a", { href: `/network/${encodeURIComponent(net.name)}` }, net.name)),
    el("span", { class: `state ${net.state}` }, net.state),
    el("span", { class: "reason" }, net.reason));
  if (net.warming_up) {  // the alerts' windows are filling since the monitor started
    head.append(el("span", { class: "warming" },
      `warming up: ${net.warming_up.runs} of ${net.warming_up.needed} runs`));
  }
  const figures = el("div", { class: "figures" });
  if (sla) {
    const verdict = sla.attained == null ? "" : sla.attained ? "met" : "missed";
    figures.append(
      figure("This month", pct(sla.availability), verdict),
      figure(`Target (${sla.profile})`, pct(target, 1)),
      figure("Error budget left", budget(sla.error_budget_remaining),
        sla.error_budget_remaining == null ? "" : sla.error_budget_remaining >= 0 ? "met" : "missed"),
      figure("SLA this month", sla.attained == null ? "no data" : sla.attained ? "met" : "missed",
        verdict));
  }
  const days = daily ? daily.days : [];
  figures.append(figure(`${days.length} days`, pct(periodAvailability(days))));
  const node = el("article", { class: "network", "data-network": net.name,
    "aria-labelledby": `net-${net.name}` }, head, figures);
  if (net.tls) node.append(tlsLine(net.tls));
  for (const e of net.model_equality || []) node.append(equalityLine(e));
  for (const q of net.quality || []) node.append(qualityLine(q));
  for (const f of net.fingerprint || []) node.append(fingerprintLine(f));
  head.firstChild.id = `net-${net.name}`;
  if (daily) {
    node.append(bars(days, target),
      el("div", { class: "axis", "aria-hidden": "true" },
        el("span", {}, `${days.length} days ago`), el("span", {}, "today")));
    const aside = {};
    let maintenance = 0;
    for (const d of days) {
      maintenance += d.maintenance;
      for (const [o, n] of Object.entries(d.set_aside)) aside[o] = (aside[o] || 0) + n;
    }
    const notes = Object.entries(aside).map(([o, n]) => `${o} ${count(n)}`);
    if (maintenance) notes.push(`in maintenance ${count(maintenance)}`);
    if (notes.length) {
      node.append(el("p", { class: "aside" },
        `Beside availability, not in it: ${notes.join(" · ")}`));
    }
  }
  if (ttft) {
    const { svg, latest } = sparkline(ttft.points);
    node.append(el("div", { class: "spark-row" },
      el("span", { class: "label" }, "TTFT p95, 24 h"), svg,
      el("span", { class: "spark-value" }, secs(latest))));
  }
  return node;
}

// -- incidents -------------------------------------------------------------------------------

function incidentLead(i) {
  return [el("td", {}, el("a", { href: `/network/${encodeURIComponent(i.network)}` }, i.network)),
    el("td", {}, i.target)];
}

// -- declared maintenance, under way or ahead ----------------------------------------------

function maintenanceList(windows) {
  document.getElementById("maintenance-section").hidden = !windows.length;
  document.getElementById("maintenance").replaceChildren(...windows.map((w) =>
    el("li", { class: w.active ? "active" : "" },
      el("strong", {}, w.active ? "Now" : "Planned"),
      ` ${utc(w.start)} – ${utc(w.end)} UTC, `,
      w.every_network ? "every network" : w.networks.join(", "),
      w.reason ? `: ${w.reason}` : "")));
}

// -- the API contract (docs/contract.md) ------------------------------------------------------

const CELL_TEXT = { honoured: "ok", ignored: "ignored", rejected: "rejected",
  "not applicable": "n/a", unmeasured: "-" };

function contractTable(rows) {
  const section = document.getElementById("contract-section");
  section.hidden = !rows.length;
  if (!rows.length) return;
  const params = [...new Set(rows.flatMap((r) => Object.keys(r.params)))];
  document.querySelector("#contract thead").replaceChildren(el("tr", {},
    el("th", { scope: "col" }, "Network"), el("th", { scope: "col" }, "Model"),
    el("th", { scope: "col" }, "Tool-call errors"),
    ...params.map((p) => el("th", { scope: "col" }, p))));
  document.querySelector("#contract tbody").replaceChildren(...rows.map((r) => {
    const rate = r.error_rate === null ? "-"
      : `${(100 * r.error_rate).toFixed(0)} % of ${r.graded}`;
    return el("tr", {}, el("td", {}, r.network), el("td", {}, r.model),
      el("td", { class: `num ${r.errors ? "bad" : ""}` }, rate),
      ...params.map((p) => {
        const cell = r.params[p] || "unmeasured";
        const bad = cell === "ignored" || cell === "rejected";
        return el("td", { class: bad ? "bad" : "" }, CELL_TEXT[cell] || cell);
      }));
  }));
}

// -- the page --------------------------------------------------------------------------------

async function refresh() {
  const error = document.getElementById("error");
  try {
    const [nets, daily, ttft, sla, incidents, maintenance, contract] = await Promise.all([
      getJSON("/api/v1/networks"), getJSON(`/api/v1/daily?days=${DAYS}`),
      getJSON("/api/v1/ttft?hours=24"), getJSON("/api/v1/sla"),
      getJSON("/api/v1/incidents?since=7d"), getJSON("/api/v1/maintenance"),
      getJSON("/api/v1/contract?days=7")]);
    const d = byName(daily.networks), t = byName(ttft.networks), s = byName(sla.networks);
    document.getElementById("networks").replaceChildren(
      ...nets.networks.map((n) => card(n, d[n.name], t[n.name], s[n.name])));
    incidentRows(incidents.incidents, incidentLead);
    maintenanceList(maintenance.windows);
    contractTable(contract.networks);
    const states = nets.networks.map((n) => n.state);
    const down = states.filter((x) => x !== "up" && x !== "maintenance").length;
    const planned = states.filter((x) => x === "maintenance").length;
    const note = planned ? ` (${planned} in planned maintenance)` : "";
    document.getElementById("overall").textContent = !states.length ? "No network configured"
      : down === 0 ? `All networks up${note}` : `${down} of ${states.length} networks not up${note}`;
    document.getElementById("where").textContent =
      `depin-monitor ${nets.version}${nets.location ? `, probing from ${nets.location}` : ""}.`;
    document.getElementById("updated").textContent =
      `Updated ${utc(nets.generated_at)} UTC; refreshes every ${REFRESH_MS / 1000} s.`;
    error.hidden = true;
  } catch (e) {
    error.textContent = `Could not refresh: ${e.message}. Showing the last figures.`;
    error.hidden = false;
  }
}

refresh();
setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
