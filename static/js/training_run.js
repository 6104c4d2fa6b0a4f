/* A training run's page: progress, curves per epoch, and the Cancel button only while it can be used. */
(function () {
  "use strict";
  const box = document.getElementById("run");
  const field = (name) => box.querySelector(`[data-field="${name}"]`);
  const NS = "http://www.w3.org/2000/svg";

  function chart(svg, history, keys) {
    svg.replaceChildren();
    const values = history.flatMap((e) => keys.map((k) => e[k])).filter((v) => typeof v === "number");
    if (!values.length) return;
    const max = Math.max(...values), min = Math.min(0, ...values);
    const x = (i) => 30 + (history.length > 1 ? i * 360 / (history.length - 1) : 180);
    const y = (v) => 185 - (v - min) / ((max - min) || 1) * 170;
    const axis = document.createElementNS(NS, "path");
    axis.setAttribute("d", "M30 15 V185 H390");
    axis.setAttribute("stroke", "#999"); axis.setAttribute("fill", "none");
    svg.appendChild(axis);
    const boundary = history.findIndex((e) => e.stage === 2);
    if (boundary > 0) {
      const line = document.createElementNS(NS, "line");
      line.setAttribute("x1", x(boundary)); line.setAttribute("x2", x(boundary));
      line.setAttribute("y1", 15); line.setAttribute("y2", 185);
      line.setAttribute("stroke", "#888"); line.setAttribute("stroke-dasharray", "2 3");
      svg.appendChild(line);
    }
    keys.forEach((key, n) => {
      const points = history.map((e, i) => typeof e[key] === "number" ? `${x(i)},${y(e[key])}` : null).filter(Boolean);
      const path = document.createElementNS(NS, "polyline");
      path.setAttribute("points", points.join(" "));
      path.setAttribute("fill", "none");
      path.setAttribute("stroke", n ? "#c05621" : "#2b6cb0");
      path.setAttribute("stroke-width", "2");
      if (n) path.setAttribute("stroke-dasharray", "6 4");
      path.dataset.key = key;
      svg.appendChild(path);
    });
    const label = document.createElementNS(NS, "text");
    label.setAttribute("x", 34); label.setAttribute("y", 12); label.setAttribute("font-size", "11");
    label.textContent = `max ${max.toFixed(3)}`;
    svg.appendChild(label);
  }

  async function poll() {
    const response = await fetch(box.dataset.url, {headers: {Accept: "application/json"}, credentials: "same-origin"});
    if (!response.ok) return;
    const run = await response.json();
    const p = run.progress || {};
    field("status").textContent = run.status;
    field("status").className = "badge " + run.status;
    field("bar").style.width = `${Math.round((p.fraction || 0) * 100)}%`;
    field("summary").textContent = p.epoch ? `stage ${p.stage}, epoch ${p.epoch} of at most ${p.epochs_total}` +
      (typeof p.val_accuracy === "number" ? ` · val accuracy ${p.val_accuracy.toFixed(3)}` : "") +
      (typeof p.learning_rate === "number" ? ` · lr ${p.learning_rate.toExponential(1)}` : "") : "";
    field("eta").textContent = run.status === "running" && p.eta_seconds ? `At most ${Math.ceil(p.eta_seconds / 60)} min left (early stopping may end it sooner).` : "";
    field("error").textContent = run.error;
    if (run.model_version && !field("model").querySelector("a")) {
      const link = document.createElement("a");
      link.href = `/ml/models/${run.model_version}/`;
      link.textContent = `v${run.model_version}`;
      field("model").replaceChildren("Model: ", link);
    }
    chart(document.getElementById("loss-chart"), run.history, ["loss", "val_loss"]);
    chart(document.getElementById("accuracy-chart"), run.history, ["accuracy", "val_accuracy"]);
    const active = run.status === "queued" || run.status === "running";
    // A run that ended can no longer be cancelled: the button goes with it.
    const cancel = field("cancel");
    if (cancel) cancel.hidden = !active;
    if (active) setTimeout(poll, 2000);
    else if (wasActive) location.reload();  // the ended run's own buttons (retry) and links
  }
  const wasActive = Boolean(field("cancel"));
  poll();
})();
