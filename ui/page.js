// A German page: Gradio sets <html lang> from the browser's language; the page keeps lang="de" (screen readers,
// hyphenation, spell checking). Gradio's own labels are made German by the translations in ui/gradio_de.json.
(function () {
  var html = document.documentElement;
  function german() { if (html.getAttribute("lang") !== "de") html.setAttribute("lang", "de"); }
  german();
  new MutationObserver(german).observe(html, { attributes: true, attributeFilter: ["lang"] });
})();

// The question's length under the input ("120 / 2000 Zeichen"), and a German sentence when a paste was cut at the
// limit (the textarea's maxlength cuts silently) or a script put in more than the limit.
(function () {
  var pasted = 0;
  function parts() {
    var box = document.querySelector("#rag-question textarea");
    var counter = document.querySelector("#rag-input-note .rag-counter");
    return box && counter ? { box: box, counter: counter, count: counter.querySelector(".rag-count") } : null;
  }
  function german(n) { return n.toLocaleString("de-DE"); }
  function update() {
    var p = parts();
    if (!p) return;
    var max = parseInt(p.counter.getAttribute("data-max"), 10) || 0;
    var n = p.box.value.length;
    if (n === 0) pasted = 0;
    var text = german(n) + " / " + german(max);
    if (p.count.textContent !== text) p.count.textContent = text;
    var over = n > max || pasted > 0;
    if (over) p.box.dataset.tooLong = "1"; else delete p.box.dataset.tooLong;
    p.counter.classList.toggle("rag-counter-full", n >= max);
    var note = p.counter.querySelector(".rag-input-error.rag-typed");
    if (over && !note) {
      note = document.createElement("div");
      note.className = "rag-input-error rag-typed";
      note.setAttribute("role", "alert");
      p.counter.insertBefore(note, p.counter.firstChild);
    }
    if (note) {
      var message = !over ? "" : "Die Frage ist zu lang (" + german(pasted || n) + " Zeichen, höchstens " + german(max) +
        ")" + (pasted ? "; der Rest wurde abgeschnitten." : ".");
      if (note.textContent !== message) note.textContent = message;
      note.hidden = !message;
    }
  }
  document.addEventListener("paste", function (event) {
    var box = event.target;
    if (!box.closest || !box.closest("#rag-question")) return;
    var text = (event.clipboardData || window.clipboardData).getData("text") || "";
    var max = parseInt(box.getAttribute("maxlength"), 10) || Infinity;
    var kept = box.value.length - (box.selectionEnd - box.selectionStart);
    pasted = kept + text.length > max ? kept + text.length : 0;
    setTimeout(update, 0);
  }, true);
  document.addEventListener("input", function (event) {
    if (event.target.closest && event.target.closest("#rag-question")) {
      if (event.inputType !== "insertFromPaste") pasted = 0;
      update();
    }
  }, true);
  setInterval(update, 400);  // the box is also emptied by the app after sending, which fires no input event
})();

// The question appears in the chat the moment it is sent, before the server answers: on a busy machine (the first
// index build takes both cores) the round trip can take seconds, and a question that seems to vanish is asked twice.
// The echo is removed as soon as the server's own bubble for it arrives.
(function () {
  var echo = null;
  function questions() { return document.querySelectorAll("#rag-chat .message-row .rag-question").length; }
  function show(text) {
    var chat = document.querySelector("#rag-chat");
    var box = document.querySelector("#rag-question textarea");
    var max = box ? parseInt(box.getAttribute("maxlength"), 10) || Infinity : Infinity;
    if (!chat || !text.trim() || text.length > max) return;
    if (echo) echo.remove();
    echo = document.createElement("div");
    echo.className = "rag-echo";
    echo.dataset.before = String(questions());
    var question = document.createElement("div");
    question.className = "rag-question";
    question.textContent = text;
    var waiting = document.createElement("div");
    waiting.className = "rag-answer rag-pending";
    waiting.innerHTML = '<div class="rag-status"><span class="rag-spinner"></span>Frage gesendet …</div>';
    echo.appendChild(question);
    echo.appendChild(waiting);
    chat.appendChild(echo);
  }
  // A question cut at the limit by a paste is not sent until the user has looked at it (any edit clears that).
  function blocked(event, box) {
    if (!box || box.dataset.tooLong !== "1") return false;
    event.preventDefault();
    event.stopImmediatePropagation();
    return true;
  }
  document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing && box.closest && box.closest("#rag-question")) {
      if (!blocked(event, box)) show(box.value);
    }
  }, true);
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("#rag-send")) {
      var box = document.querySelector("#rag-question textarea");
      if (box && !blocked(event, box)) show(box.value);
    }
  }, true);
  // A mutation observer runs before the next paint, so the echo and the server's bubble are never seen together.
  new MutationObserver(function () {
    if (echo && questions() > parseInt(echo.dataset.before, 10)) { echo.remove(); echo = null; }
  }).observe(document.body, {childList: true, subtree: true});
})();
