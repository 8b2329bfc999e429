// Copy-to-clipboard buttons and "select all" checkboxes. No framework; works without it too.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("[data-copy-target]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copyTarget);
  if (!field) return;
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(field.value ?? field.textContent);
  } catch (error) {
    field.select();  // clipboard API refused (plain http): fall back to the selection
    document.execCommand("copy");
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = label; }, 1500);
});
document.addEventListener("change", (event) => {
  const all = event.target.closest("[data-select-all]");
  if (!all) return;
  document.querySelectorAll(`input[name="${all.dataset.selectAll}"]`).forEach((box) => { box.checked = all.checked; });
});
// The dashboard's "not connected" platforms: folded away on a phone, open on a wider screen.
document.addEventListener("DOMContentLoaded", () => {
  const phone = window.matchMedia("(max-width: 600px)").matches;
  document.querySelectorAll("details[data-fold-on-phone]").forEach((fold) => { fold.open = !phone; });
});
