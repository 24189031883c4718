// One client of the API, as any other: the session cookie goes with each call, the CSRF token (the cookie the
// gateway sets for scripts) with each change; an expired session sends the person to sign in again and back here.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly requestId: string | null,
  ) {
    super(detail);
  }
}

// The request ids of the last calls that failed here (kept in this tab): a help request carries them, so that the
// referent finds the very calls in the logs.
const FAILED = "maille-failed-requests";

export function failedRequests(): string[] {
  try {
    return JSON.parse(sessionStorage.getItem(FAILED) ?? "[]") as string[];
  } catch {
    return [];
  }
}

function remember(requestId: string | null): void {
  if (!requestId) return;
  try {
    sessionStorage.setItem(FAILED, JSON.stringify([...failedRequests(), requestId].slice(-10)));
  } catch {
    /* storage full or off: nothing kept */
  }
}

function csrf(): string {
  const found = document.cookie.split("; ").find((c) => c.startsWith("maille_csrf="));
  return found ? decodeURIComponent(found.slice("maille_csrf=".length)) : "";
}

export function signIn(next: string = location.pathname + location.search): void {
  location.assign(`/login?${new URLSearchParams({ next })}`);
}

// What a person reads when a call fails, by status: the API's own words are for developers.
export function explain(error: unknown): string {
  if (error instanceof Error && !(error instanceof ApiError) && error.message) return error.message;
  if (!(error instanceof ApiError)) return "Le service ne répond pas. Vérifiez votre connexion puis réessayez.";
  switch (error.status) {
    case 401:
      return "Votre session est en veille : rechargez la page pour continuer.";
    case 403:
      return "Vous n'avez pas accès à cette page.";
    case 404:
      return "Cet élément n'existe pas ou plus.";
    case 409:
      return "Cet élément a changé entre-temps : rechargez la page puis réessayez.";
    case 412:
      return "Cet élément a été modifié ailleurs : rechargez la page puis réessayez.";
    case 413:
      return "Le fichier est trop volumineux.";
    case 415:
      return "Ce type de fichier n'est pas accepté.";
    case 422:
    case 400:
      return `Votre demande n'a pas pu être traitée : ${error.detail}`;
    case 429:
      return "Trop de demandes à la fois : réessayez dans un instant.";
    default:
      return error.status >= 500
        ? "Un service de l'ENT ne répond pas pour le moment. Réessayez dans quelques instants."
        : error.detail;
  }
}

async function request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
  const sent: Record<string, string> = { accept: "application/json", ...headers };
  const init: RequestInit = { method, credentials: "same-origin", headers: sent };
  if (method !== "GET") sent["x-csrf-token"] = csrf();
  if (body instanceof FormData || body instanceof Blob) init.body = body;
  else if (body !== undefined) {
    sent["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let answer: Response;
  try {
    answer = await fetch(path, { ...init, signal: AbortSignal.timeout(20_000) });
  } catch {
    throw new ApiError(0, "network", null);
  }
  if (answer.status === 401) {
    // A call the page makes on its own finds the session idle (the gateway refreshes tokens only when the person
    // acts): no sign-in page thrown at someone who is not there — the next thing they do wakes the session.
    if (sent[BACKGROUND]) throw new ApiError(401, "idle", null);
    signIn();
    throw new ApiError(401, "signed out", null);
  }
  if (!answer.ok) {
    let detail = answer.statusText;
    try {
      detail = (await answer.json()).detail ?? detail;
    } catch {
      /* not problem+json */
    }
    remember(answer.headers.get("x-request-id"));
    throw new ApiError(answer.status, String(detail), answer.headers.get("x-request-id"));
  }
  return answer;
}

export async function call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const answer = await request(method, path, body, headers);
  return (answer.status === 204 ? undefined : await answer.json()) as T;
}

// A call whose answer's ETag matters (a draft saved again says which version it saves over).
export async function tagged<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<[T, string | null]> {
  const answer = await request(method, path, body, headers);
  return [(answer.status === 204 ? undefined : await answer.json()) as T, answer.headers.get("etag")];
}

export const get = <T>(path: string) => call<T>("GET", path);

// A call the page makes by itself (a progress or a count kept fresh), not on the person's action: it never keeps
// the session awake, and an idle session makes it fail quietly (ApiError 401 "idle").
const BACKGROUND = "x-maille-background";
export const poll = <T>(path: string) => call<T>("GET", path, undefined, { [BACKGROUND]: "1" });

// A file sent with its progress told as it goes (fetch cannot tell an upload's progress).
export function upload<T>(path: string, file: File, progress: (share: number) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    xhr.setRequestHeader("x-csrf-token", csrf());
    xhr.setRequestHeader("content-type", file.type || "application/octet-stream");
    xhr.timeout = 300_000;
    xhr.upload.onprogress = (e) => e.lengthComputable && progress(e.loaded / e.total);
    xhr.onload = () => {
      if (xhr.status === 401) return signIn();
      if (xhr.status >= 200 && xhr.status < 300) return resolve(JSON.parse(xhr.responseText) as T);
      let detail = xhr.statusText;
      try {
        detail = JSON.parse(xhr.responseText).detail ?? detail;
      } catch {
        /* not problem+json */
      }
      remember(xhr.getResponseHeader("x-request-id"));
      reject(new ApiError(xhr.status, String(detail), xhr.getResponseHeader("x-request-id")));
    };
    xhr.onerror = xhr.ontimeout = () => reject(new ApiError(0, "network", null));
    xhr.send(file);
  });
}
