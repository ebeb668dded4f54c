// The backup panel under the subject list: a folder the user picks (typed: a USB stick's
// mount point or any folder), "Back up now", the reminder hours, and the reminder itself when
// changes older than those hours are neither on the server nor in a backup (Rust decides).
import { api } from "./api";
import type { BackupStatusDto } from "./bindings";
import { h } from "./dom";
import { t } from "./i18n";

const FOLDER_KEY = "ecrf.backupFolder";

export function backupPanel(
  guard: (action: () => Promise<void>, errorId?: string) => Promise<void>,
): HTMLElement {
  const reminder = h("div", {
    class: "notice warning",
    id: "backup-reminder",
    role: "alert",
    hidden: true,
  });
  const last = h("span", { id: "backup-last" });
  const folder = h("input", {
    id: "backup-folder",
    type: "text",
    value: localStorage.getItem(FOLDER_KEY) ?? "",
    "aria-label": t("backupFolder"),
    placeholder: "/media/usb",
  });
  const hours = h("input", {
    id: "backup-hours",
    type: "number",
    min: 1,
    max: 720,
    "aria-label": t("backupHours"),
  });
  const notice = h("div", { class: "notice", id: "backup-notice", role: "status" });
  const error = h("div", { class: "error", id: "backup-error", role: "alert" });
  const show = (s: BackupStatusDto) => {
    reminder.hidden = !s.remind;
    reminder.textContent = s.remind ? t("backupRemind") : "";
    last.textContent = `${t("backupLast")}: ${s.last_backup_utc ?? t("backupNever")}`;
    hours.value = String(s.reminder_hours);
  };
  const button = h("button", { type: "button", id: "backup-now" }, t("backupNow"));
  button.addEventListener("click", () => {
    void guard(async () => {
      error.textContent = "";
      notice.textContent = t("backingUp");
      localStorage.setItem(FOLDER_KEY, folder.value.trim());
      const done = await api.backup(folder.value);
      notice.textContent = `${t("backupDone")} (${done.changes}): ${done.path}`;
      show(await api.backupStatus());
    }, "backup-error");
  });
  hours.addEventListener("change", () => {
    void guard(
      async () => show(await api.setBackupReminderHours(Number(hours.value))),
      "backup-error",
    );
  });
  void guard(async () => show(await api.backupStatus()), "backup-error");
  return h(
    "section",
    { class: "backup", id: "backup-panel" },
    reminder,
    h("h3", {}, t("backupTitle")),
    h(
      "div",
      { class: "toolbar" },
      h("label", {}, t("backupFolder"), folder),
      button,
      h("label", {}, t("backupHours"), hours),
      last,
    ),
    notice,
    error,
  );
}
