// The staff console's only script (loaded with the page's CSP nonce): "select all" in the
// review queue, a second question before a decision moves money (data-confirm), and forms
// that make or decide something (data-once) sent once per page.
document.addEventListener("DOMContentLoaded", () => {
  const all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", () => {
      for (const box of document.querySelectorAll("input.pick")) box.checked = all.checked;
    });
  }
  // Decisions that move money are asked again, saying what moves (the button's data-confirm);
  // Enter in a form's text field sends it with its first button, which asks too.
  for (const button of document.querySelectorAll("button[data-confirm]")) {
    button.addEventListener("click", (event) => {
      if (button.form?.dataset.sent) return; // sent already: not asked twice, nor sent again
      if (!window.confirm(button.dataset.confirm)) event.preventDefault();
    });
  }
  // A double click would send the form twice (a second endpoint, a second rotation: the
  // server refuses or repeats those, but the browser shows only the last response). The buttons
  // are disabled after this turn: disabled now, a clicked button's name and value would be left
  // out of what is sent.
  for (const form of document.querySelectorAll("form[data-once]")) {
    form.addEventListener("submit", (event) => {
      if (form.dataset.sent) {
        event.preventDefault();
        return;
      }
      form.dataset.sent = "1";
      setTimeout(() => {
        for (const button of form.querySelectorAll("button")) button.disabled = true;
      }, 0);
    });
  }
});
// Back to a page kept in the browser's memory: its forms may be sent again.
window.addEventListener("pageshow", (event) => {
  if (!event.persisted) return;
  for (const form of document.querySelectorAll("form[data-once]")) {
    delete form.dataset.sent;
    for (const button of form.querySelectorAll("button")) button.disabled = false;
  }
});
