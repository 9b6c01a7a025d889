/** #inputline: Enter sends the line, typing is announced, ↑ recalls the last line, PageUp/PageDown scroll. */
export interface ComposerHooks {
  /** Runs a line; returns false to keep it in the input (a command that could not run). */
  submit(line: string): boolean;
  typing(): void;
  /** Scrolls the messages by a fraction of a page: -1 up, 1 down. */
  page(direction: -1 | 1): void;
}

export function wireComposer(form: HTMLFormElement, input: HTMLInputElement, hooks: ComposerHooks): void {
  let last = "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const line = input.value;
    if (!hooks.submit(line)) return;
    if (line.trim() !== "") last = line;
    input.value = "";
  });
  input.addEventListener("input", () => {
    if (input.value !== "" && !input.value.startsWith("/")) hooks.typing();
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowUp" && input.value === "" && last !== "") {
      event.preventDefault();
      input.value = last;
    } else if (event.key === "Escape") {
      input.value = "";
    } else if (event.key === "PageUp" || event.key === "PageDown") {
      event.preventDefault();
      hooks.page(event.key === "PageUp" ? -1 : 1);
    }
  });
}
