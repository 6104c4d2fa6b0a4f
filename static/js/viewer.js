/* Zoom and pan for one image, by mouse, keyboard, on-screen buttons and touch.
 * Mouse: wheel zooms at the cursor, drag pans, double-click zooms in (or back to fit).
 * Touch: pinch zooms, two fingers pan, one finger pans a zoomed image, double-tap zooms in or out.
 * Keys: + / − zoom, R fits, arrows pan. The zoom level is shown in #zoom-level.
 * The page tells touch from mouse by the last pointer used (html[data-input]), for its hints. */
(function () {
  "use strict";

  const MAX_SCALE = 12;
  const DOUBLE_TAP_MS = 350;  // between the two taps, as phones allow
  const DOUBLE_TAP_PX = 30;

  function setInput(kind) {
    if (document.documentElement.dataset.input !== kind) document.documentElement.dataset.input = kind;
  }
  // Before any pointer is used, guess from the primary pointer.
  setInput(window.matchMedia && window.matchMedia("(pointer: coarse)").matches ? "touch" : "pointer");
  window.addEventListener("pointerdown", (event) => setInput(event.pointerType === "touch" ? "touch" : "pointer"),
                          {capture: true, passive: true});

  function ImageViewer(container, image) {
    this.container = container;
    this.image = image;
    this.level = document.getElementById("zoom-level");
    this.pointers = new Map();  // pointerId → {x, y}
    this.pinch = null;          // {distance, scale, midX, midY, x, y} at the start of a two-finger gesture
    this.drag = null;           // {x, y} offset of a one-pointer pan
    this.lastTap = null;        // {time, x, y} of the last short touch, for double-tap
    this.touchUpAt = -Infinity; // when a touch last ended (the browser's dblclick after it is ignored)
    this.reset();

    container.addEventListener("wheel", (event) => {
      event.preventDefault();
      setInput("pointer");
      const point = this.local(event.clientX, event.clientY);
      this.zoomAt(event.deltaY < 0 ? 1.2 : 1 / 1.2, point.x, point.y);
    }, {passive: false});
    container.addEventListener("pointerdown", (event) => this.down(event));
    container.addEventListener("pointermove", (event) => this.move(event));
    container.addEventListener("pointerup", (event) => this.up(event));
    container.addEventListener("pointercancel", (event) => this.up(event, true));
    container.addEventListener("dblclick", (event) => {
      // A double tap is handled on pointerup; the dblclick the browser makes of it (a MouseEvent, with no
      // pointerType) must not zoom back out.
      const fromTouch = event.pointerType === "touch" ||
        (event.sourceCapabilities && event.sourceCapabilities.firesTouchEvents) ||
        performance.now() - this.touchUpAt < 1000;
      if (fromTouch) return;
      const point = this.local(event.clientX, event.clientY);
      this.toggleZoom(point.x, point.y);
    });

    const button = (id, action) => {
      const element = document.getElementById(id);
      if (!element) return;
      element.addEventListener("pointerdown", (event) => event.stopPropagation());
      element.addEventListener("click", (event) => {
        event.stopPropagation();
        action();
        element.blur();  // keys go on working, and no key re-fires the button
      });
    };
    button("zoom-in", () => this.zoomAt(1.25, 0, 0));
    button("zoom-out", () => this.zoomAt(1 / 1.25, 0, 0));
    button("zoom-reset", () => this.reset());
  }

  /* Point relative to the viewer's centre (the transform origin). */
  ImageViewer.prototype.local = function (clientX, clientY) {
    const box = this.container.getBoundingClientRect();
    return {x: clientX - box.left - box.width / 2, y: clientY - box.top - box.height / 2};
  };

  ImageViewer.prototype.down = function (event) {
    if (event.target.closest && event.target.closest(".zoom-controls")) return;
    this.pointers.set(event.pointerId, {x: event.clientX, y: event.clientY, start: performance.now(),
                                        startX: event.clientX, startY: event.clientY});
    try { this.container.setPointerCapture(event.pointerId); } catch (error) { /* synthetic pointer */ }
    if (this.pointers.size === 2) {
      this.drag = null;
      this.startPinch();
    } else if (this.pointers.size === 1) {
      this.drag = {x: event.clientX - this.x, y: event.clientY - this.y};
      this.container.classList.add("dragging");
    }
  };

  ImageViewer.prototype.startPinch = function () {
    const [a, b] = Array.from(this.pointers.values());
    const mid = this.local((a.x + b.x) / 2, (a.y + b.y) / 2);
    this.pinch = {distance: Math.hypot(a.x - b.x, a.y - b.y) || 1, scale: this.scale,
                  midX: mid.x, midY: mid.y, x: this.x, y: this.y};
  };

  ImageViewer.prototype.move = function (event) {
    const pointer = this.pointers.get(event.pointerId);
    if (!pointer) return;
    pointer.x = event.clientX;
    pointer.y = event.clientY;
    if (this.pinch && this.pointers.size >= 2) {
      const [a, b] = Array.from(this.pointers.values());
      const mid = this.local((a.x + b.x) / 2, (a.y + b.y) / 2);
      const scale = Math.min(MAX_SCALE, Math.max(1, this.pinch.scale * Math.hypot(a.x - b.x, a.y - b.y) / this.pinch.distance));
      const applied = scale / this.pinch.scale;
      // The point under the fingers' midpoint stays under it, and follows it as the fingers move (pan).
      this.x = mid.x - (this.pinch.midX - this.pinch.x) * applied;
      this.y = mid.y - (this.pinch.midY - this.pinch.y) * applied;
      this.scale = scale;
      if (this.scale === 1) { this.x = 0; this.y = 0; }
      this.apply();
    } else if (this.drag) {
      this.x = event.clientX - this.drag.x;
      this.y = event.clientY - this.drag.y;
      this.apply();
    }
  };

  ImageViewer.prototype.up = function (event, cancelled) {
    const pointer = this.pointers.get(event.pointerId);
    this.pointers.delete(event.pointerId);
    if (this.pointers.size < 2) this.pinch = null;
    if (this.pointers.size === 1) {
      const [rest] = Array.from(this.pointers.values());
      this.drag = {x: rest.x - this.x, y: rest.y - this.y};
    } else if (this.pointers.size === 0) {
      this.drag = null;
      this.container.classList.remove("dragging");
    }
    if (event.pointerType === "touch") this.touchUpAt = performance.now();
    if (cancelled || !pointer || event.pointerType !== "touch" || this.pointers.size) return;
    const short = performance.now() - pointer.start < 300 &&
      Math.hypot(event.clientX - pointer.startX, event.clientY - pointer.startY) < 10;
    if (!short) { this.lastTap = null; return; }
    const now = performance.now();
    const last = this.lastTap;
    if (last && now - last.time < DOUBLE_TAP_MS && Math.hypot(event.clientX - last.x, event.clientY - last.y) < DOUBLE_TAP_PX) {
      const point = this.local(event.clientX, event.clientY);
      this.toggleZoom(point.x, point.y);
      this.lastTap = null;
    } else {
      this.lastTap = {time: now, x: event.clientX, y: event.clientY};
    }
  };

  ImageViewer.prototype.toggleZoom = function (cx, cy) {
    if (this.scale > 1) this.reset();
    else this.zoomAt(2.5, cx, cy);
  };

  ImageViewer.prototype.reset = function () {
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.apply();
  };

  ImageViewer.prototype.zoomAt = function (factor, cx, cy) {
    const next = Math.min(MAX_SCALE, Math.max(1, this.scale * factor));
    const applied = next / this.scale;
    // Keep the point under the cursor where it is.
    this.x = cx - (cx - this.x) * applied;
    this.y = cy - (cy - this.y) * applied;
    this.scale = next;
    if (this.scale === 1) { this.x = 0; this.y = 0; }
    this.apply();
  };

  ImageViewer.prototype.pan = function (dx, dy) {
    this.x += dx;
    this.y += dy;
    this.apply();
  };

  ImageViewer.prototype.apply = function () {
    this.image.style.transform = `translate(${this.x}px, ${this.y}px) scale(${this.scale})`;
    this.container.dataset.scale = this.scale.toFixed(3);
    if (this.level) this.level.textContent = `${this.scale.toFixed(1)}×`;
  };

  /* Keys shared by both screens; returns true when the key was a viewer key. */
  ImageViewer.prototype.handleKey = function (event) {
    switch (event.key) {
      case "+": case "=": this.zoomAt(1.25, 0, 0); return true;
      case "-": case "_": this.zoomAt(1 / 1.25, 0, 0); return true;
      case "r": case "R": this.reset(); return true;
      case "ArrowLeft": this.pan(60, 0); return true;
      case "ArrowRight": this.pan(-60, 0); return true;
      case "ArrowUp": this.pan(0, 60); return true;
      case "ArrowDown": this.pan(0, -60); return true;
      default: return false;
    }
  };

  window.ImageViewer = ImageViewer;
})();
