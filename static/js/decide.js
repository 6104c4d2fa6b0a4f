/* One key or one click per decision: a class, or "cannot be judged" then a reason.
 * DecisionPanel calls onDecide({label}) or onDecide({cannot_judge: true, reason, comment}).
 *
 * No key may re-fire a button: a clicked button never keeps the focus (it goes to
 * `focusHome`, the image), so Space or Enter after a click cannot decide the next
 * image; and a key held down (auto-repeat) decides nothing. */
(function () {
  "use strict";

  function DecisionPanel(root, onDecide, focusHome) {
    this.root = root;
    this.onDecide = onDecide;
    this.focusHome = focusHome || null;
    this.reasons = root.querySelector("#reasons");
    this.commentBox = root.querySelector("#other-comment-box");
    this.comment = root.querySelector("#other-comment");
    this.classKeys = {};
    this.reasonKeys = {};
    this.enabled = true;
    const press = (button, action) => {
      // A mouse press does not move the focus to the button at all.
      button.addEventListener("mousedown", (event) => event.preventDefault());
      button.addEventListener("click", () => {
        this.release(button);
        action();
      });
    };
    root.querySelectorAll(".class-button").forEach((button) => {
      this.classKeys[button.dataset.key.toLowerCase()] = button.dataset.label;
      press(button, () => this.decide({label: button.dataset.label}));
    });
    root.querySelectorAll(".reason-button").forEach((button) => {
      this.reasonKeys[button.dataset.key] = button.dataset.reason;
      press(button, () => this.chooseReason(button.dataset.reason));
    });
    press(root.querySelector("#cannot-judge"), () => this.openReasons());
    const back = root.querySelector("#reasons-back");
    if (back) press(back, () => this.closeReasons());
    this.comment.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        this.submitOther();
      } else if (event.key === "Escape") {
        this.closeReasons();
      }
      event.stopPropagation();
    });
  }

  /* Take the focus off a pressed button (keyboard users' focus goes to the image). */
  DecisionPanel.prototype.release = function (button) {
    if (document.activeElement === button || this.root.contains(document.activeElement)) {
      if (this.focusHome) this.focusHome.focus({preventScroll: true});
      else button.blur();
    }
  };

  DecisionPanel.prototype.inReasons = function () { return !this.reasons.hidden; };

  DecisionPanel.prototype.openReasons = function () {
    this.reasons.hidden = false;
    this.commentBox.hidden = true;
    this.root.classList.add("in-reasons");
  };

  DecisionPanel.prototype.closeReasons = function () {
    this.reasons.hidden = true;
    this.commentBox.hidden = true;
    this.comment.value = "";
    this.root.classList.remove("in-reasons");
  };

  DecisionPanel.prototype.chooseReason = function (reason) {
    if (reason === "other") {
      this.commentBox.hidden = false;
      this.comment.focus();
      return;
    }
    this.decide({cannot_judge: true, reason: reason, comment: ""});
  };

  DecisionPanel.prototype.submitOther = function () {
    const text = this.comment.value.trim();
    if (!text) {
      this.comment.setAttribute("aria-invalid", "true");
      this.comment.placeholder = "A comment is needed for “other”.";
      return;
    }
    this.decide({cannot_judge: true, reason: "other", comment: text});
  };

  DecisionPanel.prototype.decide = function (decision) {
    if (!this.enabled) return;
    this.closeReasons();
    if (this.focusHome && this.root.contains(document.activeElement)) this.focusHome.focus({preventScroll: true});
    this.onDecide(decision);
  };

  /* Display names of the codes on the buttons, for messages people read. */
  DecisionPanel.prototype.className = function (code) {
    const button = this.root.querySelector(`.class-button[data-label="${code}"]`);
    return button ? button.dataset.name : code;
  };

  DecisionPanel.prototype.reasonName = function (code) {
    const button = this.root.querySelector(`.reason-button[data-reason="${code}"]`);
    return button ? button.dataset.name : code;
  };

  DecisionPanel.prototype.describe = function (decision) {
    return decision.label ? this.className(decision.label) : `Cannot be judged (${this.reasonName(decision.reason)})`;
  };

  /* Returns true when the key was a decision key. */
  DecisionPanel.prototype.handleKey = function (event) {
    if (event.repeat) return this.isDecisionKey(event);  // held down: swallowed, decides nothing
    if (this.inReasons()) {
      if (event.key === "Escape") { this.closeReasons(); return true; }
      if (this.reasonKeys[event.key]) { this.chooseReason(this.reasonKeys[event.key]); return true; }
      return false;
    }
    if (event.key === "x" || event.key === "X") { this.openReasons(); return true; }
    const label = this.classKeys[event.key.toLowerCase()];
    if (label) { this.decide({label: label}); return true; }
    return false;
  };

  DecisionPanel.prototype.isDecisionKey = function (event) {
    const key = event.key.toLowerCase();
    return Boolean(this.classKeys[key] || this.reasonKeys[event.key] || key === "x");
  };

  window.DecisionPanel = DecisionPanel;
})();
