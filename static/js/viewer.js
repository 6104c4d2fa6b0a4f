/* Zoom (wheel, +/-) and pan (drag, arrow keys) for one image; R or double-click resets. */
(function () {
  "use strict";

  function ImageViewer(container, image) {
    this.container = container;
    this.image = image;
    this.reset();
    let drag = null;
    container.addEventListener("wheel", (event) => {
      event.preventDefault();
      const factor = event.deltaY < 0 ? 1.2 : 1 / 1.2;
      const box = container.getBoundingClientRect();
      this.zoomAt(factor, event.clientX - box.left - box.width / 2, event.clientY - box.top - box.height / 2);
    }, {passive: false});
    container.addEventListener("pointerdown", (event) => {
      drag = {x: event.clientX - this.x, y: event.clientY - this.y};
      container.setPointerCapture(event.pointerId);
      container.classList.add("dragging");
    });
    container.addEventListener("pointermove", (event) => {
      if (!drag) return;
      this.x = event.clientX - drag.x;
      this.y = event.clientY - drag.y;
      this.apply();
    });
    const stop = () => { drag = null; container.classList.remove("dragging"); };
    container.addEventListener("pointerup", stop);
    container.addEventListener("pointercancel", stop);
    container.addEventListener("dblclick", () => this.reset());
  }

  ImageViewer.prototype.reset = function () {
    this.scale = 1;
    this.x = 0;
    this.y = 0;
    this.apply();
  };

  ImageViewer.prototype.zoomAt = function (factor, cx, cy) {
    const next = Math.min(12, Math.max(1, this.scale * factor));
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
