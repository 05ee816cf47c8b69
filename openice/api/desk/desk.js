// The collections desk: a thin page over the /v1/collections API. The key stays in this tab's session storage;
// every text from the server is set with textContent, never parsed as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
let key = sessionStorage.getItem("openice-key") || "";
let selected = null;
let selectedCurrency = null;  // the open case's currency, for a promise

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${key}` };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    headers["Idempotency-Key"] = crypto.randomUUID();
  }
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const where = data.field ? ` (${data.field})` : "";
    throw new Error(`${data.detail || data.title || response.statusText}${where}`);
  }
  return data;
}

function cells(row, values) {
  for (const value of values) {
    const td = document.createElement("td");
    td.textContent = value;
    row.appendChild(td);
  }
  return row;
}

const money = (m) => `${Number(m.amount).toLocaleString("en", { minimumFractionDigits: 2 })} ${m.currency}`;

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
  $("error").hidden = !error;
}

function drawChart(stages) {
  const svg = $("chart");
  svg.replaceChildren();
  const max = Math.max(1, ...stages.map((s) => Number(s.overdue.amount)));
  stages.forEach((s, i) => {
    const y = 10 + i * 26;
    const label = document.createElementNS("http://www.w3.org/2000/svg", "text");
    label.setAttribute("x", 0); label.setAttribute("y", y + 14); label.textContent = s.stage;
    const bar = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    bar.setAttribute("x", 40); bar.setAttribute("y", y); bar.setAttribute("height", 18);
    bar.setAttribute("width", Math.max(2, 300 * Number(s.overdue.amount) / max));
    bar.setAttribute("fill", ["#8fb8e8", "#5b93d6", "#3c6fb6", "#254f8c", "#7a2d2d"][i % 5]);
    bar.dataset.stage = s.stage;
    svg.append(label, bar);
  });
}

async function refresh() {
  const [stages, queue] = await Promise.all([api("GET", "/v1/collections/summary"),
                                             api("GET", "/v1/collections/queue?limit=200")]);
  const summary = $("summary").tBodies[0];
  summary.replaceChildren(...stages.map((s) => cells(document.createElement("tr"),
    [s.stage, s.cases, money(s.overdue), s.due_today, s.promises_pending, s.unassigned])));
  drawChart(stages);
  const rows = $("queue").tBodies[0];
  rows.replaceChildren(...queue.items.map((c) => {
    const tr = cells(document.createElement("tr"), [c.id, c.loan_id, c.stage, c.days_past_due, money(c.overdue),
      c.assignee || "–", c.next_contact_on, `${c.promises_kept} / ${c.promises_broken}`]);
    tr.dataset.caseId = c.id;
    if (c.id === selected) tr.classList.add("selected");
    tr.addEventListener("click", () => openCase(c.id).catch(showError));
    return tr;
  }));
  $("empty").hidden = queue.items.length > 0;
}

async function openCase(id) {
  const c = await api("GET", `/v1/collections/cases/${id}`);
  selected = id;
  selectedCurrency = c.overdue.currency;
  $("case").hidden = false;
  $("case-id").textContent = `${c.id} · loan ${c.loan_id}`;
  $("case-line").textContent = `${c.stage}, ${c.days_past_due} days past due, ${money(c.overdue)} overdue` +
    (c.promise ? `; promise of ${money(c.promise.amount)} by ${c.promise.by}` : "") +
    `; next contact ${c.next_contact_on}`;
  $("history").replaceChildren(...c.actions.map((a) => {
    const li = document.createElement("li");
    li.textContent = [a.on, a.kind, a.channel, a.outcome, a.amount && money(a.amount), a.promise_by && `by ${a.promise_by}`,
                      a.agent && `agent ${a.agent}`, a.detail].filter(Boolean).join(" · ");
    return li;
  }));
  for (const tr of $("queue").tBodies[0].rows) tr.classList.toggle("selected", Number(tr.dataset.caseId) === id);
  return c;
}

$("connect").addEventListener("submit", async (event) => {
  event.preventDefault();
  key = $("key").value.trim();
  try {
    await refresh();
    sessionStorage.setItem("openice-key", key);
    $("status").textContent = "Connected.";
    $("desk").hidden = false;
    showError(null);
  } catch (error) {
    $("status").textContent = `Could not connect: ${error.message}`;
  }
});

$("outcome").addEventListener("change", () => { $("promise-fields").hidden = $("outcome").value !== "promise"; });

$("contact").addEventListener("submit", async (event) => {
  event.preventDefault();
  const body = { channel: $("channel").value, outcome: $("outcome").value };
  if (body.outcome === "promise") {
    body.promise = { amount: $("promise-amount").value.trim(), currency: selectedCurrency, by: $("promise-date").value };
  }
  try {
    await api("POST", `/v1/collections/cases/${selected}/contacts`, body);
    showError(null);
    await openCase(selected);
    await refresh();
  } catch (error) {
    showError(error);
  }
});

$("assign").addEventListener("submit", async (event) => {
  event.preventDefault();
  const agents = $("agents").value.split(",").map((a) => a.trim()).filter(Boolean);
  try {
    const result = await api("POST", "/v1/collections/assignments", { agents });
    showError(null);
    $("status").textContent = "Assigned: " + Object.entries(result.assigned).map(([a, n]) => `${a} ${n}`).join(", ");
    await refresh();
  } catch (error) {
    showError(error);
  }
});

if (key) { $("key").value = key; $("connect").requestSubmit(); }
