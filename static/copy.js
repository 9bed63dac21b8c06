// The fallback page's copy button. External file, no inline script (Content-Security-Policy).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var field = document.querySelector(button.getAttribute("data-copy"));
  var done = function () { button.textContent = button.getAttribute("data-copied"); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, function () { field.select(); });
  } else {
    // Older in-app webviews: select the text so the person can copy it by hand.
    field.focus();
    field.select();
    try { if (document.execCommand("copy")) done(); } catch (e) { /* selection stays */ }
  }
});
