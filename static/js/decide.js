/* One key or one click per decision: a class, or "cannot be judged" then a reason.
 * DecisionPanel calls onDecide({label}) or onDecide({cannot_judge: true, reason, comment}). */
(function () {
  "use strict";

  function DecisionPanel(root, onDecide) {
    this.root = root;
    this.onDecide = onDecide;
    this.reasons = root.querySelector("#reasons");
    this.commentBox = root.querySelector("#other-comment-box");
    this.comment = root.querySelector("#other-comment");
    this.classKeys = {};
    this.reasonKeys = {};
    this.enabled = true;
    root.querySelectorAll(".class-button").forEach((button) => {
      this.classKeys[button.dataset.key.toLowerCase()] = button.dataset.label;
      button.addEventListener("click", () => this.decide({label: button.dataset.label}));
    });
    root.querySelectorAll(".reason-button").forEach((button) => {
      this.reasonKeys[button.dataset.key] = button.dataset.reason;
      button.addEventListener("click", () => this.chooseReason(button.dataset.reason));
    });
    root.querySelector("#cannot-judge").addEventListener("click", () => this.openReasons());
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

  DecisionPanel.prototype.inReasons = function () { return !this.reasons.hidden; };

  DecisionPanel.prototype.openReasons = function () {
    this.reasons.hidden = false;
    this.commentBox.hidden = true;
    this.reasons.querySelector(".reason-button").focus();
  };

  DecisionPanel.prototype.closeReasons = function () {
    this.reasons.hidden = true;
    this.commentBox.hidden = true;
    this.comment.value = "";
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
    this.onDecide(decision);
  };

  /* Returns true when the key was a decision key. */
  DecisionPanel.prototype.handleKey = function (event) {
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

  window.DecisionPanel = DecisionPanel;
})();
