// depin-monitor, the page of one network (/network/{name}): drawn from the read-only JSON API
// (/api/v1/networks/{name} and the other resources with ?network=, docs/api.md); refreshes
// every REFRESH_MS while the tab is visible; its helpers are common.js's. Nothing fetched
// from anywhere but this server.
"use strict";

const NAME = decodeURIComponent(location.pathname.split("/")[2] || "");
const Q = encodeURIComponent(NAME);

// A share in percent rounded down (99.996 % shows 99.99 %, never 100.00 %), where the status
// page rounds to nearest.
const pctFloor = (x, digits = 2) => (x == null ? "–" : `${(Math.floor(x * 10 ** (digits + 2)) / 10 ** digits).toFixed(digits)} %`);
const rate = (x) => (x == null ? "–" : `${x.toFixed(1)} tok/s`);

// -- daily availability --------------------------------------------------------------------

function dayLabel(day) {
  if (day.runs === 0) return `${day.date}: no runs`;
  const parts = [`${day.date}: ${pctFloor(day.availability)} available`];
  if (day.interval) parts.push(`95 % interval ${pctFloor(day.interval[0])} to ${pctFloor(day.interval[1])}`);
  parts.push(`${count(day.ok)} ok of ${count(day.ok + day.failed)} runs`);
  if (day.maintenance) parts.push(`${count(day.maintenance)} in maintenance`);
  return parts.join("; ");
}

function dailyBars(days, objective) {
  const list = el("ol", { class: "bars", "aria-label": `Availability per UTC day, last ${days.length} days` });
  for (const day of days) {
    const label = dayLabel(day);
    list.append(el("li", { class: `bar ${barClass(day, objective)}`, title: label, "aria-label": label }));
  }
  return el("div", {}, list, el("div", { class: "axis", "aria-hidden": "true" },
    el("span", {}, `${days.length} days ago`), el("span", {}, "today")));
}

function dayRows(days) {
  const body = document.querySelector("#days tbody");
  body.replaceChildren();
  const seen = days.filter((d) => d.runs > 0).reverse().slice(0, 30);
  if (!seen.length) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: "6" }, "No runs")));
    return;
  }
  for (const d of seen) {
    const aside = Object.entries(d.set_aside).map(([o, n]) => `${o} ${count(n)}`).join(", ");
    body.append(el("tr", {}, el("td", {}, d.date), el("td", { class: "num" }, pctFloor(d.availability)),
      el("td", { class: "num" }, d.interval ? `${pctFloor(d.interval[0])} – ${pctFloor(d.interval[1])}` : "–"),
      el("td", { class: "num" }, `${count(d.ok)} / ${count(d.ok + d.failed)}`),
      el("td", {}, aside || "–"), el("td", { class: "num" }, d.maintenance ? count(d.maintenance) : "–")));
  }
}

// -- history charts ------------------------------------------------------------------------

// A small line chart: one polyline per series over the points, scaled to the largest value.
function chart(points, series, fmt, title) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "spark chart");
  svg.setAttribute("viewBox", "0 0 100 40");
  svg.setAttribute("preserveAspectRatio", "none");
  const values = series.flatMap((s) => points.map((p) => p[s.key]).filter((v) => v != null));
  const top = Math.max(...values, 1e-9);
  for (const s of series) {
    const xy = [];
    points.forEach((p, i) => {
      if (p[s.key] == null) return;
      const x = points.length > 1 ? (i / (points.length - 1)) * 100 : 50;
      xy.push(`${x.toFixed(2)},${(39 - (p[s.key] / top) * 37).toFixed(2)}`);
    });
    const pl = document.createElementNS(SVG, "polyline");
    pl.setAttribute("points", xy.join(" "));
    pl.setAttribute("data-series", s.key);
    if (s.cls) pl.setAttribute("class", s.cls);
    svg.append(pl);
  }
  svg.setAttribute("role", "img");
  const last = [...points].reverse().find((p) => p[series[0].key] != null);
  svg.setAttribute("aria-label", values.length
    ? `${title}: ${series.map((s) => s.label).join(" and ")}, up to ${fmt(top)}; latest ` +
      `${series.map((s) => `${s.label} ${fmt(last ? last[s.key] : null)}`).join(", ")}`
    : `${title}: no runs`);
  return el("div", { class: "spark-row" }, el("span", { class: "label" }, title), svg,
    el("span", { class: "spark-value" }, fmt(last ? last[series[0].key] : null)));
}

// -- verdicts ------------------------------------------------------------------------------

function budget(left) {
  if (left == null) return "–";
  if (left >= 0) return pctFloor(left, 0);
  const spent = 1 - left;
  return `overspent ${spent < 10 ? spent.toFixed(1) : Math.round(spent)}×`;
}

const SLI_VALUE = { availability: pctFloor, ttft_p95: secs, e2e_p99: secs,
  disconnect_rate: pctFloor, decode_tps: rate, wrong_output_rate: pctFloor };

function slaBlock(sla) {
  if (!sla) return el("p", { class: "aside" }, "No SLA profile: no SLA verdict.");
  const verdict = sla.attained == null ? "no data" : sla.attained ? "met" : "missed";
  const rows = sla.slis.map((s) => el("tr", { class: s.attained === false ? "missed" : "" },
    el("td", {}, s.sli), el("td", { class: "num" }, (SLI_VALUE[s.sli] || String)(s.value)),
    el("td", { class: "num" }, (SLI_VALUE[s.sli] || String)(s.target)),
    el("td", {}, s.attained == null ? "no data" : s.attained ? "met" : "missed"),
    el("td", { class: "num" }, budget(s.error_budget_remaining))));
  return el("div", { class: "sla" },
    el("h3", {}, `SLA this month (${sla.profile}): `,
      el("span", { class: `verdict ${verdict === "missed" ? "bad" : ""}` }, verdict)),
    el("div", { class: "table-wrap" }, el("table", { id: "slis" },
      el("thead", {}, el("tr", {}, ...["SLI", "Value", "Target", "Verdict", "Budget left"].map(
        (h) => el("th", { scope: "col" }, h)))), el("tbody", {}, ...rows))));
}

function equalityLine(e) {
  const p = e.p_value == null ? "" : `p = ${e.p_value.toPrecision(2)}, `;
  const said = e.verdict === "differs" ? `DIFFERS from ${e.reference}` :
    e.verdict === "same as reference" ? `same as ${e.reference}` :
    `not enough samples to compare with ${e.reference}`;
  return el("p", { class: `equality ${e.verdict === "differs" ? "bad" : ""}` },
    `Model equality, ${e.model}: `, e.verdict === "differs" ? el("strong", {}, said) : said,
    ` (${p}${e.samples}/${e.reference_samples} samples, ${utc(e.tested_at)})`);
}

// Output quality (/api/v1/quality?network=, docs/quality.md): each comparison's latest audit,
// both accuracies on the items both sides answered with their 95 % Wilson intervals.
const share = (v, ci) => (v == null ? "–" : `${(100 * v).toFixed(1)} %` +
  (ci ? ` [${(100 * ci[0]).toFixed(1)}–${(100 * ci[1]).toFixed(1)} %]` : ""));

function qualityLine(q) {
  const worse = q.verdict === "worse than reference";
  const said = worse ? `WORSE than ${q.reference}` : q.verdict === "not worse" ?
    `not worse than ${q.reference}` : `not enough items to compare with ${q.reference}`;
  const p = q.p_value == null ? "" : `, p = ${q.p_value.toPrecision(2)}`;
  return el("p", { class: `quality ${worse ? "bad" : ""}` },
    `Quality, ${q.model}: `, worse ? el("strong", {}, said) : said,
    ` (accuracy ${share(q.accuracy, q.accuracy_ci)} vs ${share(q.reference_accuracy, q.reference_accuracy_ci)}` +
    ` on ${q.pairs} of ${q.items} items${p}, ${utc(q.audited_at)})`);
}

// The API contract (/api/v1/contract?network=, docs/contract.md): per model, its tool-call
// error rate and the latest run's cell per parameter, as the main page's table has them.
const CELL_TEXT = { honoured: "ok", ignored: "ignored", rejected: "rejected",
  "not applicable": "n/a", unmeasured: "-" };

// the report's short column names (monitor/analysis/contract.py: PARAM_SHORT)
const PARAM_SHORT = { "response_format.json_object": "json_object",
  "response_format.json_schema": "json_schema", "stream_options.include_usage": "usage",
  reasoning_effort: "reasoning" };

function contractTable(r) {
  const params = Object.keys(r.params);
  const rate = r.error_rate == null ? "–" : `${(100 * r.error_rate).toFixed(0)} % of ${r.graded}` +
    (r.error_rate_interval ? ` [${(100 * r.error_rate_interval[0]).toFixed(0)}–` +
      `${(100 * r.error_rate_interval[1]).toFixed(0)} %]` : "");
  return el("div", { class: "table-wrap" }, el("table", { class: "contract", "data-model": r.model },
    el("caption", {}, `API contract, ${r.model} (last 7 days, checked ${utc(r.checked_at)})`),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Tool-call errors"),
      ...params.map((p) => el("th", { scope: "col", title: p }, PARAM_SHORT[p] || p)))),
    el("tbody", {}, el("tr", {}, el("td", { class: `num ${r.errors ? "bad" : ""}` }, rate),
      ...params.map((p) => {
        const cell = r.params[p];
        const bad = cell === "ignored" || cell === "rejected";
        return el("td", { class: bad ? "bad" : "" }, CELL_TEXT[cell] || cell);
      })))));
}

// Any other verdict family the networks resource carries (fingerprint, ...): a list of objects
// with a `verdict`, told by their `summary` when they have one; in red when it reads badly.
const KNOWN = new Set(["targets", "jobs", "model_equality", "quality", "warming_up"]);
function otherVerdicts(net) {
  const out = [];
  for (const [family, list] of Object.entries(net)) {
    if (KNOWN.has(family) || !Array.isArray(list)) continue;
    for (const v of list) {
      if (!v || typeof v !== "object" || v.verdict == null) continue;
      const what = v.model || v.target || v.tier || "";
      const when = v.tested_at || v.started_at;
      const bad = /differ|chang|miss|fail/i.test(v.summary || v.verdict);
      out.push(el("p", { class: `verdict-line ${bad ? "bad" : ""}`, "data-family": family },
        `${family.replace(/_/g, " ")}${what ? `, ${what}` : ""}: ${v.summary || v.verdict}` +
        (when ? ` (${utc(when)})` : "")));
    }
  }
  return out;
}

// -- the rest ------------------------------------------------------------------------------

function maintenanceList(windows) {
  const section = document.getElementById("maintenance-section");
  section.hidden = !windows.length;
  document.getElementById("maintenance").replaceChildren(...windows.map((w) =>
    el("li", { class: w.active ? "active" : "" },
      el("strong", {}, w.active ? "Now" : "Planned"),
      ` ${utc(w.start)} – ${utc(w.end)} UTC`, w.reason ? `: ${w.reason}` : "")));
}

function badges(net) {
  const box = document.getElementById("badges");
  if (box.childElementCount) return;  // drawn once: the images refresh themselves
  for (const [kind, path] of Object.entries(net.badges)) {
    const url = new URL(path, location.href).href;
    box.append(el("figure", { class: "badge" }, el("img", { src: path, alt: `${NAME} ${kind}` }),
      el("figcaption", {}, el("code", {}, `![${NAME} ${kind}](${url})`))));
  }
}

async function refresh() {
  const error = document.getElementById("error");
  try {
    const [net, nets, sla, incidents, quality, contract] = await Promise.all([
      getJSON(`/api/v1/networks/${Q}`), getJSON("/api/v1/networks"),
      getJSON(`/api/v1/sla?network=${Q}`), getJSON(`/api/v1/incidents?network=${Q}&since=7d&limit=200`),
      getJSON(`/api/v1/quality?network=${Q}`), getJSON(`/api/v1/contract?network=${Q}&days=7`)]);
    const card = nets.networks.find((n) => n.name === NAME) || {};
    const s = sla.networks.find((n) => n.name === NAME);
    const objective = s && s.slis.find((x) => x.sli === "availability");
    document.title = `${NAME} · depin-monitor`;
    document.getElementById("title").replaceChildren(NAME, " ",
      el("span", { class: `state ${net.state}` }, net.state));
    document.getElementById("overall").replaceChildren(net.reason, ...(card.warming_up
      ? [" ", el("span", { class: "warming" },  // the alerts' windows are filling since start
        `warming up: ${card.warming_up.runs} of ${card.warming_up.needed} runs`)] : []));
    document.getElementById("facts").textContent = `${net.kind}, ` +
      `${net.targets.map((t) => `${t.name}: ${t.model}`).join(", ")}; every ${net.interval_s} s` +
      (net.sla_profile ? `; SLA profile ${net.sla_profile}.` : ".");
    document.getElementById("updated").textContent = `Updated ${utc(net.generated_at)} UTC.`;
    document.getElementById("feed").setAttribute("href", net.feed);
    maintenanceList(net.maintenance);
    document.getElementById("verdicts").replaceChildren(slaBlock(s),
      ...(card.model_equality || []).map(equalityLine), ...quality.audits.map(qualityLine),
      ...otherVerdicts(card), ...contract.networks.map(contractTable));
    document.getElementById("bars").replaceChildren(dailyBars(net.days, objective ? objective.target : 0.99));
    dayRows(net.days);
    const pts = net.history.points;
    document.getElementById("history").replaceChildren(
      chart(pts, [{ key: "ttft_p95_s", label: "p95" }, { key: "ttft_p50_s", label: "p50", cls: "p50" }], secs, "TTFT"),
      chart(pts, [{ key: "decode_p50_tps", label: "p50" }, { key: "decode_p5_tps", label: "p5", cls: "p50" }], rate, "Decode rate"));
    incidentRows(incidents.incidents,
      (i) => [el("td", {}, i.target), el("td", {}, i.location)]);
    badges(net);
    error.hidden = true;
  } catch (e) {
    error.textContent = `Could not refresh: ${e.message}. Showing the last figures.`;
    error.hidden = false;
  }
}

refresh();
setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
