// The portal's addresses are real paths (/messagerie, /cdi…): the gateway answers each with the portal, which
// shows the screen the path names. A link within the portal changes the path without loading the page again.
import { useEffect, useState } from "react";

const listeners = new Set<() => void>();

// The page before this one (a help request says where the person was when they asked).
let previous = "";
export const previousPage = (): string => previous;

export function navigate(to: string): void {
  if (to === location.pathname + location.search) return;
  previous = location.pathname + location.search;
  history.pushState(null, "", to);
  listeners.forEach((listener) => listener());
  window.scrollTo(0, 0);
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname + location.search);
  useEffect(() => {
    const update = () => setPath(location.pathname + location.search);
    listeners.add(update);
    window.addEventListener("popstate", update);
    return () => {
      listeners.delete(update);
      window.removeEventListener("popstate", update);
    };
  }, []);
  return path;
}

// A link of the portal: a real <a href> (opens in a new tab, readable by screen readers), followed in place.
export function onLink(event: React.MouseEvent<HTMLAnchorElement>): void {
  const anchor = event.currentTarget;
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  if (anchor.target || anchor.origin !== location.origin || anchor.pathname.startsWith("/api/")) return;
  if (["/login", "/logout"].includes(anchor.pathname) || anchor.pathname.startsWith("/auth/")) return;
  event.preventDefault();
  navigate(anchor.pathname + anchor.search);
}
