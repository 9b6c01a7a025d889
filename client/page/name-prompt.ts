/** The name dialog: on the first visit ("Pick a name") and later to change it. */
import { checkNick } from "./commands";
import { byId } from "./dom";

export class NamePrompt {
  readonly #dialog = byId<HTMLDialogElement>("name-dialog");
  readonly #form = byId<HTMLFormElement>("name-form");
  readonly #input = byId<HTMLInputElement>("name-input");
  readonly #problem = byId("name-problem");
  readonly #title = byId("name-title");
  readonly #intro = byId("name-intro");
  readonly #button = byId<HTMLButtonElement>("name-go");
  #done: ((nick: string) => void) | undefined;

  constructor() {
    this.#form.addEventListener("submit", (e) => {
      e.preventDefault();
      const checked = checkNick(this.#input.value);
      if ("problem" in checked) {
        this.#problem.textContent = checked.problem;
        this.#input.setAttribute("aria-invalid", "true");
        this.#input.focus();
        return;
      }
      this.#dialog.close();
      this.#done?.(checked.nick);
    });
    this.#input.addEventListener("input", () => {
      this.#problem.textContent = "";
      this.#input.removeAttribute("aria-invalid");
    });
  }

  /** Asks for a name; `first` is the welcome, which cannot be dismissed. */
  ask(first: boolean, current: string | undefined, done: (nick: string) => void): void {
    this.#done = done;
    this.#title.textContent = first ? "Welcome to bun-chat" : "Change your name";
    this.#intro.textContent = first
      ? "Pick a name people will see. You can change it later."
      : "Everyone in your rooms will see the new name.";
    this.#button.textContent = first ? "Start chatting" : "Change name";
    this.#input.value = current ?? "";
    this.#problem.textContent = "";
    this.#dialog.dataset.first = String(first);
    this.#dialog.showModal();
    this.#input.focus();
    this.#input.select();
  }

  /** The first-visit dialog stays until a name is picked (Esc does nothing there). */
  wire(): void {
    this.#dialog.addEventListener("cancel", (e) => {
      if (this.#dialog.dataset.first === "true") e.preventDefault();
    });
  }
}
