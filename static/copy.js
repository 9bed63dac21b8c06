// The fallback page's copy button. External file, no inline script (Content-Security-Policy).
document.addEventListener("click", function (event) {
  var button = event.target.closest("[data-copy]");
  if (!button) return;
  var field = document.querySelector(button.getAttribute("data-copy"));
  var done = function () { button.textContent = button.getAttribute("data-copied"); };
  // Older in-app webviews, and webviews that refuse the Clipboard API (Android's WebView denies
  // it unless the app grants a permission): copy the selection, or leave the text selected so
  // the person can copy it by hand. setSelectionRange: iOS ignores select() on a read-only field.
  var byHand = function () {
    field.focus();
    field.select();
    field.setSelectionRange(0, field.value.length);
    try { if (document.execCommand("copy")) done(); } catch (e) { /* selection stays */ }
  };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(field.value).then(done, byHand);
  } else {
    byHand();
  }
});
