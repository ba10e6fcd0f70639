// Reads the messages' rendered text (never their markup) with the browser's own speech.
(function () {
  "use strict";
  var button = document.querySelector('[data-action="read-aloud"]');
  if (!button) { return; }
  var speech = window.speechSynthesis;
  if (!speech || typeof window.SpeechSynthesisUtterance !== "function") {
    button.disabled = true;
    button.title = "This browser cannot read aloud.";
    return;
  }
  var label = button.textContent;
  function idle() {
    button.textContent = label;
    button.setAttribute("aria-pressed", "false");
  }
  function passages() {
    var nodes = document.querySelectorAll(".message .content");
    return Array.prototype.map.call(nodes, function (node) {
      return node.textContent.trim();
    }).filter(Boolean);
  }
  button.addEventListener("click", function () {
    if (button.getAttribute("aria-pressed") === "true") {
      speech.cancel();
      idle();
      return;
    }
    var texts = passages();
    if (texts.length === 0) { return; }
    speech.cancel();
    texts.forEach(function (text, index) {
      var utterance = new window.SpeechSynthesisUtterance(text);
      if (index === texts.length - 1) {
        utterance.onend = idle;
        utterance.onerror = idle;
      }
      speech.speak(utterance);
    });
    button.textContent = "Stop reading";
    button.setAttribute("aria-pressed", "true");
  });
})();
