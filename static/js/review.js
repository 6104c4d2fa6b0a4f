/* The review queue: show an image, take one decision, show the next at once.
 * The next image is leased and preloaded while the reader looks at this one. */
(function () {
  "use strict";

  const root = document.getElementById("review");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const imageElement = document.getElementById("current-image");
  const emptyMessage = document.getElementById("queue-empty");
  const progress = document.getElementById("progress");
  const toast = document.getElementById("toast");
  const help = document.getElementById("help");
  const viewer = new ImageViewer(document.getElementById("viewer"), imageElement);
  const buffer = [];           // leased items not yet decided, current first
  const preloaded = new Map(); // image id → HTMLImageElement
  const done = new Set();      // decided or skipped here: a refill that crossed a submit must not bring them back
  let shownAt = null;
  let busy = false;
  let refilling = 0;           // refills in flight
  let latestRefill = 0;        // only the newest refill's progress is shown
  let toastTimer = null;

  function say(message, isError) {
    toast.textContent = message;
    toast.classList.toggle("error", Boolean(isError));
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, isError ? 6000 : 2500);
  }

  async function api(url, options) {
    const response = await fetch(url, Object.assign({
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
    }, options || {}));
    if (response.status === 204) return null;
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = body.detail || Object.values(body).flat().join(" ") || response.statusText;
      throw new Error(Array.isArray(detail) ? detail.join(" ") : detail);
    }
    return body;
  }

  function preload(item) {
    if (!preloaded.has(item.image)) {
      const image = new Image();
      image.src = item.image_url;
      preloaded.set(item.image, image);
    }
  }

  function showProgress(p) {
    progress.textContent = `Today ${p.today} · In total ${p.total} · Left for you ${p.left}${p.left_more ? "+" : ""}`;
  }

  /* What the metadata file said about the patient and the photo (never a source label). */
  const contextNames = {age: "Age", sex: "Sex", body_site: "Body site", fitzpatrick: "Fitzpatrick type", modality: "Modality"};
  function showClinicalContext(context) {
    const box = document.getElementById("clinical-context");
    if (!box) return;
    box.replaceChildren();
    for (const [key, label] of Object.entries(contextNames)) {
      if (context[key] === undefined) continue;
      const term = document.createElement("dt");
      term.textContent = label;
      const value = document.createElement("dd");
      value.textContent = String(context[key]);
      box.append(term, value);
    }
    box.hidden = box.childElementCount === 0;
  }

  function show() {
    const item = buffer[0];
    viewer.reset();
    if (!item) {
      imageElement.hidden = true;
      imageElement.removeAttribute("src");
      root.dataset.current = "";
      // Empty only when the server says so; otherwise the next image is on its way.
      root.dataset.state = refilling ? "loading" : "empty";
      emptyMessage.hidden = Boolean(refilling);
      return;
    }
    root.dataset.state = "ready";
    emptyMessage.hidden = true;
    imageElement.hidden = false;
    imageElement.src = item.image_url;
    imageElement.dataset.image = item.image;
    root.dataset.current = item.image;
    showClinicalContext(item.clinical_context || {});
    shownAt = performance.now();
  }

  /* Keep the current image and two more leased and preloaded. */
  function refill() {
    const number = ++latestRefill;
    refilling += 1;
    return api(`${root.dataset.nextUrl}?count=3`).then((data) => {
      for (const item of data.items) {
        if (!done.has(item.image) && !buffer.some((held) => held.image === item.image)) buffer.push(item);
      }
      buffer.forEach(preload);
      if (number === latestRefill) showProgress(data.progress);
      return data;
    }).finally(() => {
      refilling -= 1;
      if (!root.dataset.current) show();
    });
  }

  function advance() {
    const finished = buffer.shift();
    if (finished) {
      done.add(finished.image);
      preloaded.delete(finished.image);
    }
    show();
    refill().catch((error) => say(error.message, true));
  }

  async function submit(decision) {
    const item = buffer[0];
    if (!item || busy) return;
    busy = true;
    const payload = Object.assign({image: item.image}, decision, {
      seconds_spent: Math.round((performance.now() - shownAt) / 100) / 10,
    });
    try {
      const review = await api(root.dataset.submitUrl, {method: "POST", body: JSON.stringify(payload)});
      advance();
      const what = decision.label ? decision.label : `cannot judge (${decision.reason})`;
      say(review.revealed_source_label ? `Saved: ${what}. Source folder said: ${review.revealed_source_label}`
                                       : `Saved: ${what}`);
    } catch (error) {
      say(`Not saved: ${error.message}`, true);
      if (/already|excluded|no image/i.test(error.message)) advance();
    } finally {
      busy = false;
    }
  }

  async function skip() {
    const item = buffer[0];
    if (!item || busy) return;
    busy = true;
    try {
      await api(root.dataset.skipUrl.replace("{image}", item.image), {method: "POST"});
      advance();
      say("Skipped");
    } catch (error) {
      say(error.message, true);
    } finally {
      busy = false;
    }
  }

  async function undo() {
    if (busy) return;
    busy = true;
    try {
      const review = await api(root.dataset.undoUrl, {method: "POST"});
      const item = {image: review.image, image_url: review.image_url};
      done.delete(item.image);
      const index = buffer.findIndex((held) => held.image === item.image);
      if (index >= 0) buffer.splice(index, 1);
      buffer.unshift(item);
      preload(item);
      show();
      say(`Undone: your review of image ${review.image}. Decide again.`);
    } catch (error) {
      say(error.message, true);
    } finally {
      busy = false;
    }
  }

  const panel = new DecisionPanel(document.getElementById("decide"), submit);
  document.getElementById("skip").addEventListener("click", skip);
  document.getElementById("undo").addEventListener("click", undo);
  document.getElementById("help-button").addEventListener("click", () => help.showModal());

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (help.open) return;  // the dialog closes itself on Esc
    if (event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT") return;
    let handled = panel.handleKey(event);
    if (!handled && !panel.inReasons()) {
      if (event.key === "s" || event.key === "S") { skip(); handled = true; }
      else if (event.key === "z" || event.key === "Z") { undo(); handled = true; }
      else if (event.key === "?") { help.showModal(); handled = true; }
      else handled = viewer.handleKey(event);
    }
    if (handled) event.preventDefault();
  });

  root.dataset.state = "loading";
  refill().then(show).catch((error) => say(error.message, true));
})();
