/** The room's header: its name and topic (click or Enter to edit; Enter saves, Esc cancels). */
import type { RoomView } from "../v2/api";
import { TOPIC_MAX } from "./commands";
import { byId } from "./dom";
import { roomLabel } from "./sidebar-view";

export class HeaderView {
  readonly #name = byId("room-name");
  readonly #topic = byId<HTMLButtonElement>("topic");
  readonly #form = byId<HTMLFormElement>("topic-form");
  readonly #input = byId<HTMLInputElement>("topic-input");
  readonly #count = byId("member-count");
  #room: string | undefined;

  constructor(setTopic: (room: string, topic: string) => void) {
    this.#input.maxLength = TOPIC_MAX;
    this.#topic.addEventListener("click", () => this.#edit());
    this.#form.addEventListener("submit", (e) => {
      e.preventDefault();
      if (this.#room !== undefined && this.#input.value.trim() !== this.#topic.dataset.topic) {
        setTopic(this.#room, this.#input.value.trim());
      }
      this.#close();
    });
    this.#input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        e.stopPropagation();
        this.#close();
      }
    });
    this.#input.addEventListener("blur", () => this.#close(false));
  }

  render(room: string | undefined, view: RoomView | undefined): void {
    if (room !== this.#room) this.#close(false);
    this.#room = room;
    this.#name.textContent = room === undefined ? "bun-chat" : roomLabel(room, view);
    const topic = view?.topic ?? "";
    this.#topic.hidden = room === undefined || !this.#form.hidden;
    this.#topic.dataset.topic = topic;
    this.#topic.textContent = topic || "Add a topic";
    this.#topic.classList.toggle("empty", topic === "");
    this.#topic.title = topic ? `${topic} (click to change)` : "Add a topic";
    this.#topic.setAttribute("aria-label", topic ? `Topic: ${topic}. Change it` : "Add a topic");
    const people = view?.users.length ?? 0;
    this.#count.textContent = String(people);
  }

  #edit(): void {
    this.#input.value = this.#topic.dataset.topic ?? "";
    this.#topic.hidden = true;
    this.#form.hidden = false;
    this.#input.focus();
    this.#input.select();
  }

  #close(focus = true): void {
    if (this.#form.hidden) return;
    this.#form.hidden = true;
    this.#topic.hidden = this.#room === undefined;
    if (focus) this.#topic.focus();
  }
}
