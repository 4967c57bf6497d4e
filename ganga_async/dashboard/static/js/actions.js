// The job page's actions: kill, resubmit the failed subjobs, remove. Each asks first in a
// <dialog>, then POSTs with the CSRF header and says what the server answered.
import { banner, post } from "./common.js";

const WORDS = {
  kill: ["Kill", "Kill job {id} and all its subjobs that are still active?"],
  resubmit: ["Resubmit failed", "Resubmit the failed subjobs of job {id}?"],
  remove: ["Remove", "Remove job {id}? Its record and its files are deleted; this cannot be undone."],
};

export function wireActions(jobId, { onDone } = {}) {
  const dialog = document.getElementById("confirm");
  const text = dialog.querySelector(".question");
  let pending = null;
  dialog.addEventListener("close", async () => {
    const action = pending;
    pending = null;
    if (dialog.returnValue !== "yes" || !action) return;
    try {
      const answer = await post(`/api/jobs/${jobId}/${action}`);
      if (answer.ok === false) banner(answer.error || `${action} failed`);
      else banner(answer.message || `${action}: done`, { ok: true });
    } catch (error) {
      banner(`${WORDS[action][0]}: ${error.message}`);
    }
    if (onDone) onDone(action);
  });
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => {
      pending = button.dataset.action;
      text.textContent = WORDS[pending][1].replace("{id}", jobId);
      dialog.querySelector("[value=yes]").textContent = WORDS[pending][0];
      dialog.returnValue = "";
      dialog.showModal();
    });
  }
}
