"use strict";
// Shared by every live page: formatting, the exact-value convention, the rate chart, copy
// buttons, and the first render from the view inlined in the page, then polling.
const $ = (id) => document.getElementById(id);

function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return (i === 0 ? String(v) : v.toFixed(v < 10 ? 2 : 1)) + " " + units[i];
}
const rate = (n) => bytes(n) + "/s";
const short = (digest) => digest.replace("sha256:", "").slice(0, 12);

// Text for people, the exact number for machines.
function show(id, value, text) {
  const el = $(id);
  el.dataset.value = String(value);
  el.textContent = text === undefined ? String(value) : text;
}

function cell(text, cls, value) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  if (value !== undefined) td.dataset.value = String(value);
  td.textContent = text;
  return td;
}

function badge(text, cls) {
  const span = document.createElement("span");
  span.className = "badge " + (cls || text).replace(/\s/g, "-");
  span.textContent = text;
  return span;
}

// A button that copies `text` (a magnet) to the clipboard; the text is also its data-copy.
function copyButton(text, label) {
  const button = document.createElement("button");
  button.className = "copy";
  button.type = "button";
  button.textContent = label;
  button.dataset.copy = text;
  button.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.appendChild(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    button.textContent = "copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
  return button;
}

function link(href, text) {
  const a = document.createElement("a");
  a.className = "link";
  a.href = href;
  a.textContent = text;
  return a;
}

// Draws `samples` (oldest first, one a second, `capacity` wide) into the SVG `chartId`: `fill`
// is the key drawn as an area, `line` the one drawn as a line. The y-axis labels (`<id>-ymax`,
// `<id>-ymid`) say what the top and the middle of the chart mean.
function renderRateChart(chartId, samples, capacity, fill, line) {
  const peakFill = Math.max(0, ...samples.map((r) => r[fill]));
  const peakLine = Math.max(0, ...samples.map((r) => r[line]));
  const peak = Math.max(peakFill, peakLine);
  const x = (i) => (600 * (capacity - samples.length + i) / (capacity - 1)).toFixed(1);
  const y = (v) => (peak ? 100 - 100 * v / peak : 100).toFixed(1);
  const points = (key) => samples.map((r, i) => x(i) + "," + y(r[key])).join(" ");
  const first = samples.length ? x(0) : "0";
  const last = samples.length ? x(samples.length - 1) : "600";
  const chart = $(chartId);
  chart.querySelector(".bt").setAttribute("points", first + ",100 " + points(fill) + " " + last + ",100");
  chart.querySelector(".ws").setAttribute("points", points(line) || "0,100 600,100");
  chart.dataset.samples = String(samples.length);
  chart.dataset.peakFill = String(peakFill);
  chart.dataset.peakLine = String(peakLine);
  show(chartId + "-ymax", peak, rate(peak));
  show(chartId + "-ymid", peak / 2, rate(Math.round(peak / 2)));
  return peak;
}

// Renders the view inlined in the page at once (so the first paint holds data), then polls
// `url` every second.
function startPage(url, render) {
  const status = $("status");
  const shown = (view) => {
    render(view);
    status.className = "ok";
    status.textContent = "live \u00b7 " + new Date(view.at_ms).toLocaleTimeString();
    status.dataset.updatedAt = String(view.at_ms);
  };
  const inlined = $("first-view");
  if (inlined && inlined.textContent.trim().startsWith("{")) shown(JSON.parse(inlined.textContent));
  async function poll() {
    try {
      const response = await fetch(url, { cache: "no-store" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      shown(await response.json());
    } catch (e) {
      status.className = "bad";
      status.textContent = "cannot read " + url + ": " + e.message;
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 1000);
}
