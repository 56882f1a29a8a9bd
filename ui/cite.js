// [n] markers: scroll to the source card of the same answer and flash it (ids are unique per answer).
document.addEventListener("click", function (event) {
  var link = event.target.closest ? event.target.closest("a.rag-cite") : null;
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  var id = (link.getAttribute("href") || "").replace(/^#/, "");
  var card = id ? document.getElementById(id) : null;
  if (!card) return;
  card.scrollIntoView({ behavior: "smooth", block: "nearest" });
  card.classList.remove("rag-flash");
  void card.offsetWidth;
  card.classList.add("rag-flash");
}, true);

// A new question moves to the top of the chat, so its answer and the first source cards are read from the
// start (the default autoscroll would show only the last cards of a long answer).
(function () {
  var seen = 0;
  function scrollable(el) {
    while (el && el !== document.body) {
      var style = getComputedStyle(el);
      if (/(auto|scroll)/.test(style.overflowY) && el.scrollHeight > el.clientHeight) return el;
      el = el.parentElement;
    }
    return null;
  }
  function check() {
    var rows = document.querySelectorAll("#rag-chat .rag-question");
    if (rows.length === seen) return;
    seen = rows.length;
    if (!rows.length) return;
    var row = rows[rows.length - 1].closest(".message-row") || rows[rows.length - 1];
    var box = scrollable(row);
    if (!box) return;
    box.scrollTop += row.getBoundingClientRect().top - box.getBoundingClientRect().top - 8;
  }
  var pending = false;
  new MutationObserver(function () {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () { pending = false; check(); });
  }).observe(document.documentElement, { childList: true, subtree: true });
})();
