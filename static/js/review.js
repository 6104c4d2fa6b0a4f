/* The review queue: show an image, take one decision, show the next at once.
 * The next images are leased and preloaded while the reader looks at this one.
 *
 * A decision names the image on screen and is taken only once that image has
 * loaded; the server accepts it only while the reader holds that image. Errors
 * are told apart by their machine-readable `code`, never by their wording. */
(function () {
  "use strict";

  const root = document.getElementById("review");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const imageElement = document.getElementById("current-image");
  const viewerElement = document.getElementById("viewer");
  const emptyMessage = document.getElementById("queue-empty");
  const progressElement = document.getElementById("progress");
  const toast = document.getElementById("toast");
  const clinical = document.getElementById("clinical");
  const changeBanner = document.getElementById("change-banner");
  const confidenceButton = document.getElementById("confidence");
  const fullSizeButton = document.getElementById("full-size");
  const help = document.getElementById("help");
  const gallery = document.getElementById("gallery");
  const viewer = new ImageViewer(viewerElement, imageElement);
  const buffer = [];           // items not yet decided, current first
  const preloaded = new Map(); // image id → HTMLImageElement
  const done = new Set();      // decided or skipped here: a refill that crossed a submit must not bring them back
  // Codes after which the image is no longer this reader's to decide: show the next one.
  const GONE = new Set(["not_in_queue", "decided", "already_reviewed", "no_image", "not_yours"]);
  let progress = null;         // the reader's counts, updated by each decision at once
  let decisions = 0;           // decisions made here; a refill started before the last one has stale counts
  let shownAt = null;
  let busy = false;
  let unsure = false;
  let refilling = 0;           // refills in flight
  let latestRefill = 0;        // only the newest refill's progress is shown
  let toastTimer = null;
  let endSuggestion = null;    // while the model's suggestion is on screen: ends it
  const suggestionBox = document.getElementById("suggestion");

  function say(message, isError) {
    toast.textContent = message;
    toast.classList.toggle("error", Boolean(isError));
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.textContent = ""; }, isError ? 6000 : 2500);
  }

  async function api(url, options) {
    const response = await fetch(url, Object.assign({
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": csrf, "Accept": "application/json"},
    }, options || {}));
    if (response.status === 204) return null;
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      let detail = body.detail || Object.values(body).flat().join(" ") || response.statusText;
      if (Array.isArray(detail)) detail = detail.join(" ");
      const error = new Error(detail);
      error.code = body.code || (response.status === 409 ? "conflict" : "");
      error.status = response.status;
      throw error;
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

  function showProgress() {
    if (!progress) return;
    progressElement.textContent =
      `Today ${progress.today} · In total ${progress.total} · Left for you ${progress.left}${progress.left_more ? "+" : ""}`;
  }

  /* Counts change with the decision itself, not when the next refill comes back. */
  function count(today, left) {
    decisions += 1;
    if (!progress) return;
    progress.today = Math.max(0, progress.today + today);
    progress.total = Math.max(0, progress.total + today);
    if (!progress.left_more) progress.left = Math.max(0, progress.left + left);
    showProgress();
  }

  function setUnsure(value) {
    unsure = value;
    confidenceButton.setAttribute("aria-pressed", String(value));
    confidenceButton.classList.toggle("chosen", value);
  }

  function setFullSize(on) {
    const item = buffer[0];
    fullSizeButton.setAttribute("aria-pressed", String(Boolean(on && item)));
    fullSizeButton.classList.toggle("chosen", Boolean(on && item));
    if (!item) return;
    const url = on ? item.full_image_url : item.image_url;
    if (imageElement.getAttribute("src") !== url) imageElement.src = url;
  }

  /* What the image's metadata says about the patient and the photo, in words (never a source label). */
  function showClinical(item) {
    clinical.replaceChildren();
    for (const entry of (item && item.clinical) || []) {
      const part = document.createElement("span");
      const name = document.createElement("span");
      name.className = "muted";
      name.textContent = `${entry.name} `;
      part.append(name, entry.value);
      clinical.append(part);
    }
  }

  function show() {
    const item = buffer[0];
    viewer.reset();
    setUnsure(false);
    if (!item) {
      imageElement.hidden = true;
      imageElement.removeAttribute("src");
      delete imageElement.dataset.image;
      root.dataset.current = "";
      showClinical(null);
      changeBanner.hidden = true;
      // Empty only when the server says so; otherwise the next image is on its way.
      root.dataset.state = refilling ? "loading" : "empty";
      emptyMessage.hidden = Boolean(refilling);
      return;
    }
    // "ready" once the image is really on screen (its load event): decisions and the clock start there.
    root.dataset.state = "showing";
    emptyMessage.hidden = true;
    imageElement.hidden = false;
    imageElement.dataset.image = item.image;
    setFullSize(false);
    if (imageElement.complete && imageElement.naturalWidth > 0) shown();
    imageElement.alt = `Image ${item.image} under review`;
    root.dataset.current = item.image;
    root.dataset.mode = item.mode || "new";
    showClinical(item);
    if (item.mode === "change") {
      changeBanner.textContent = `Changing your decision on image ${item.image} (now: ${item.decisionName}). ` +
        "Choose again, or skip to leave it as it is.";
      changeBanner.hidden = false;
    } else {
      changeBanner.hidden = true;
    }
  }

  function shown() {
    if (!buffer[0] || imageElement.dataset.image !== String(buffer[0].image)) return;
    if (root.dataset.state !== "ready") shownAt = performance.now();
    root.dataset.state = "ready";
  }
  imageElement.addEventListener("load", shown);
  imageElement.addEventListener("error", () => {
    if (buffer[0]) say(`Image ${buffer[0].image} could not be loaded; skip it (S) or reload the page.`, true);
  });

  /* Keep the current image and two more leased and preloaded. */
  function refill() {
    const number = ++latestRefill;
    const decisionsAtStart = decisions;
    refilling += 1;
    return api(`${root.dataset.nextUrl}?count=3`).then((data) => {
      for (const item of data.items) {
        if (!done.has(item.image) && !buffer.some((held) => held.image === item.image)) buffer.push(item);
      }
      buffer.forEach(preload);
      if (number === latestRefill && decisionsAtStart === decisions) {
        progress = Object.assign({}, data.progress);
        showProgress();
      }
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

  /* The image on screen, once it is really on screen. */
  function currentDecidable() {
    const item = buffer[0];
    if (!item || busy) return null;
    const loaded = root.dataset.state === "ready" && imageElement.complete && imageElement.naturalWidth > 0 &&
      imageElement.dataset.image === String(item.image);
    if (!loaded) {
      say("The image is still loading; decide once you see it.");
      return null;
    }
    return item;
  }

  /* After the reader's own decision only: the model's top 3 for the decided image, for a moment
   * (or until Enter); Z undoes the decision meanwhile. A suggestion that cannot be had holds nobody up. */
  async function revealSuggestion(item, decision) {
    if (!root.dataset.suggestionUrl) return;
    root.dataset.state = "suggestion";  // no decision, no skip, until the next image is on screen
    panel.enabled = false;
    try {
      let data;
      try {
        data = await api(root.dataset.suggestionUrl, {method: "POST", body: JSON.stringify({image: item.image})});
      } catch (error) {
        return;
      }
      // Nothing to show, or the reader undid the decision meanwhile.
      if (!data || !data.classes.length || buffer[0] !== item) return;
      document.getElementById("suggestion-title").textContent =
        `The model's top ${data.classes.length} for image ${item.image}:`;
      const list = document.getElementById("suggestion-classes");
      list.replaceChildren();
      for (const entry of data.classes) {
        const row = document.createElement("li");
        row.textContent = `${entry.name} ${Math.round(entry.probability * 100)} %`;
        if (decision.label === entry.code) {
          row.classList.add("chosen-class");
          row.append(" (your decision)");
        }
        list.append(row);
      }
      suggestionBox.hidden = false;
      await new Promise((resolve) => {
        const timer = setTimeout(() => endSuggestion(), Number(root.dataset.suggestionSeconds) * 1000);
        endSuggestion = () => {
          clearTimeout(timer);
          endSuggestion = null;
          suggestionBox.hidden = true;
          resolve();
        };
      });
    } finally {
      panel.enabled = true;
    }
  }

  async function submit(decision) {
    const item = currentDecidable();
    if (!item) return;
    busy = true;
    const changing = item.mode === "change";
    const payload = Object.assign({image: item.image}, decision, {
      confidence: unsure ? "unsure" : "sure",
      seconds_spent: Math.round((performance.now() - shownAt) / 100) / 10,
    });
    let review;
    try {
      review = await api(changing ? root.dataset.changeUrl : root.dataset.submitUrl,
                         {method: "POST", body: JSON.stringify(payload)});
    } catch (error) {
      say(`Not saved: ${error.message}`, true);
      if (GONE.has(error.code)) advance();
      busy = false;
      return;
    }
    if (!changing) count(1, -1);
    const what = panel.describe(decision) + (payload.confidence === "unsure" ? ", unsure" : "");
    const saved = changing ? `Changed image ${item.image} to ${what}` : `Saved: ${what}`;
    say(review.revealed_source_label
      ? `${saved}. The source folder said: ${panel.className(review.revealed_source_label)}`
      : saved);
    busy = false;  // undo stays possible while the suggestion shows
    await revealSuggestion(item, decision);
    if (buffer[0] === item) advance();
  }

  async function skip() {
    const item = buffer[0];
    if (root.dataset.state === "suggestion") {  // the image on screen is decided already
      if (endSuggestion) endSuggestion();
      return;
    }
    if (!item || busy) return;
    if (item.mode === "change") {  // leave the decision as it was
      advance();
      say(`Image ${item.image} left as it was.`);
      return;
    }
    busy = true;
    try {
      await api(root.dataset.skipUrl.replace("{image}", item.image), {method: "POST"});
      count(0, -1);
      advance();
      say("Skipped: it stays in My reviews, to reopen.");
    } catch (error) {
      say(error.message, true);
      if (GONE.has(error.code)) advance();
    } finally {
      busy = false;
    }
  }

  function putFirst(item) {
    done.delete(item.image);
    const index = buffer.findIndex((held) => held.image === item.image);
    if (index >= 0) buffer.splice(index, 1);
    buffer.unshift(item);
    preload(item);
    show();
  }

  async function undo() {
    if (endSuggestion) endSuggestion();
    if (busy) return;
    busy = true;
    try {
      const review = await api(root.dataset.undoUrl, {method: "POST"});
      count(-1, 1);
      putFirst(Object.assign({mode: "new"}, review.item));
      say(`Undone: your review of image ${review.image}. Decide again.`);
    } catch (error) {
      say(error.message, true);
    } finally {
      busy = false;
    }
  }

  /* ?image=ID: an image from My reviews, to change (decided) or to decide (skipped). */
  async function openFromHistory(imageId) {
    try {
      const opened = await api(root.dataset.openUrl.replace("{image}", imageId), {method: "POST"});
      const item = Object.assign({mode: opened.mode}, opened.item);
      if (opened.decision) {
        item.decisionName = opened.decision.label ? panel.className(opened.decision.label)
                                                  : `cannot be judged (${panel.reasonName(opened.decision.reason)})`;
      }
      putFirst(item);
    } catch (error) {
      say(`Image ${imageId}: ${error.message}`, true);
    }
  }

  const gallerySlot = document.getElementById("gallery-images");
  const galleryStatus = document.getElementById("gallery-status");
  const galleryKeys = {};
  gallery.querySelectorAll(".gallery-classes button").forEach((button) => {
    galleryKeys[button.dataset.key.toLowerCase()] = button.dataset.label;
    button.addEventListener("click", () => showGallery(button.dataset.label));
  });

  async function showGallery(code) {
    gallery.querySelectorAll(".gallery-classes button").forEach((button) =>
      button.classList.toggle("chosen", button.dataset.label === code));
    galleryStatus.textContent = "Loading…";
    gallerySlot.replaceChildren();
    const query = new URLSearchParams({label: code});
    if (buffer[0]) query.set("exclude", buffer[0].image);
    try {
      const data = await api(`${root.dataset.galleryUrl}?${query}`);
      galleryStatus.textContent = data.items.length
        ? `${data.name}: ${data.items.length} curated image${data.items.length === 1 ? "" : "s"}`
        : `${data.name}: no curated images yet.`;
      for (const item of data.items) {
        const link = document.createElement("a");
        link.href = item.image_url;
        link.target = "_blank";
        link.rel = "noopener";
        const image = document.createElement("img");
        image.src = item.thumbnail_url;
        image.alt = `${data.name}, reference image ${item.image}`;
        image.loading = "lazy";
        link.append(image);
        gallerySlot.append(link);
      }
    } catch (error) {
      galleryStatus.textContent = error.message;
    }
  }

  function openGallery() {
    if (!gallery.open) gallery.showModal();
  }

  const panel = new DecisionPanel(document.getElementById("decide"), submit, viewerElement);
  const tool = (id, action) => {
    const button = document.getElementById(id);
    button.addEventListener("mousedown", (event) => event.preventDefault());
    button.addEventListener("click", () => {
      if (document.activeElement === button) viewerElement.focus({preventScroll: true});
      action();
    });
  };
  tool("skip", skip);
  tool("undo", undo);
  tool("confidence", () => setUnsure(!unsure));
  tool("full-size", () => setFullSize(fullSizeButton.getAttribute("aria-pressed") !== "true"));
  tool("gallery-button", openGallery);
  tool("help-button", () => help.showModal());

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (help.open) return;  // the dialog closes itself on Esc
    if (gallery.open) {
      const code = galleryKeys[event.key.toLowerCase()];
      if (code && !event.repeat) { showGallery(code); event.preventDefault(); }
      return;
    }
    if (event.target.tagName === "TEXTAREA" || event.target.tagName === "INPUT") return;
    if (endSuggestion) {  // the model's suggestion is on screen: Z undoes, anything else goes on
      if (event.repeat) { event.preventDefault(); return; }
      if (event.key.toLowerCase() === "z") undo();
      else endSuggestion();
      event.preventDefault();
      return;
    }
    let handled = panel.handleKey(event);
    if (!handled && !panel.inReasons() && !event.repeat) {
      const key = event.key.toLowerCase();
      if (key === "s") { skip(); handled = true; }
      else if (key === "z") { undo(); handled = true; }
      else if (key === "u") { setUnsure(!unsure); handled = true; }
      else if (key === "f") { setFullSize(fullSizeButton.getAttribute("aria-pressed") !== "true"); handled = true; }
      else if (key === "g") { openGallery(); handled = true; }
      else if (event.key === "?") { help.showModal(); handled = true; }
      else handled = viewer.handleKey(event);
    }
    // Space and Enter never act on a button that kept the focus by accident.
    if (!handled && (event.key === " " || event.key === "Enter") && event.target.closest &&
        event.target.closest("#review button")) handled = true;
    if (handled) event.preventDefault();
  });

  root.dataset.state = "loading";
  const first = root.dataset.openImage ? openFromHistory(root.dataset.openImage) : Promise.resolve();
  first.then(refill).then(() => { if (!root.dataset.current) show(); })
    .catch((error) => say(error.message, true));
})();
