// The unread count of the bell, kept live: read once, then told by the gateway's stream (/live, server-sent events)
// of each new notification and of what another tab marked read. The browser opens the stream again by itself when it
// drops; a signed-out session ends it.
import { useEffect, useState } from "react";
import { poll } from "./api";

type Listener = (unread: number, heard?: string) => void;
const listeners = new Set<Listener>();
let unread = 0;
let source: EventSource | null = null;

function tell(heard?: string): void {
  listeners.forEach((listener) => listener(unread, heard));
}

export function setUnread(count: number): void {
  unread = Math.max(0, count);
  tell();
}

function open(): void {
  if (source !== null || typeof EventSource === "undefined") return;
  poll<{ unread: number }>("/api/timeline/v1/unread").then((read) => setUnread(read.unread), () => undefined);
  source = new EventSource("/live");
  source.addEventListener("notification", (event) => {
    unread += 1;
    let title = "";
    try {
      title = JSON.parse((event as MessageEvent).data).title ?? "";
    } catch {
      /* not ours */
    }
    tell(title);
  });
  source.addEventListener("unread", (event) => {
    try {
      setUnread(JSON.parse((event as MessageEvent).data).unread);
    } catch {
      /* not ours */
    }
  });
  // Opened again after the gateway ended it (every quarter of an hour): the count may have changed meanwhile.
  source.addEventListener("open", () => {
    poll<{ unread: number }>("/api/timeline/v1/unread").then((read) => setUnread(read.unread), () => undefined);
  });
}

export function useUnread(): [number, string] {
  const [state, setState] = useState<[number, string]>([unread, ""]);
  useEffect(() => {
    const listener: Listener = (count, heard) => setState(([, last]) => [count, heard ?? last]);
    listeners.add(listener);
    open();
    return () => {
      listeners.delete(listener);
    };
  }, []);
  return state;
}
