// depin-monitor's pages (the status page and a network's page) share these helpers: loaded
// before each page's own script, which uses them as globals. Nothing fetched from anywhere
// but this server.
"use strict";

const REFRESH_MS = 30000;
const SVG = "http://www.w3.org/2000/svg";

const secs = (x) => (x == null ? "–" : x < 1 ? `${Math.round(x * 1000)} ms` : `${x.toFixed(2)} s`);
const count = (n) => n.toLocaleString("en-US");
const utc = (t) => new Date(t * 1000).toISOString().slice(0, 16).replace("T", " ");

function duration(s) {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

async function getJSON(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

// A daily bar's colour: good at or above the objective, warn from 95 %, else bad.
function barClass(day, objective) {
  if (day.availability == null) return day.maintenance ? "maint" : "none";
  if (day.availability >= objective) return "good";
  return day.availability >= 0.95 ? "warn" : "bad";
}

// The incidents table of a page: `lead(incident)` gives its first two cells (the status page:
// network and target; a network's page: target and location), the other five are common.
function incidentRows(incidents, lead) {
  const body = document.querySelector("#incidents tbody");
  body.replaceChildren();
  if (!incidents.length) {
    body.append(el("tr", { class: "empty" }, el("td", { colspan: "7" }, "No incidents")));
    return;
  }
  for (const i of incidents) {
    body.append(el("tr", { class: i.maintenance ? "planned" : "" }, ...lead(i),
      el("td", {}, i.outcome),
      el("td", {}, utc(i.started_at)), el("td", { class: "num" }, duration(i.duration_s)),
      el("td", { class: "num" }, count(i.failures)),
      el("td", { class: i.ongoing && !i.maintenance ? "ongoing" : "" },
        (i.ongoing ? "ongoing" : "resolved") + (i.maintenance ? ", in maintenance" : ""))));
  }
}
