import { useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { ApiError, call, explain, get } from "../api";
import { setUnread } from "../live";
import { navigate } from "../router";
import type { Channel, FeedPage, Notification, NotificationPreferences } from "../types";
import { A, Failure, Notice, Show, useLoad, useOutcome } from "./common";

const KIND_ICONS: Record<string, string> = {
  mail: "fr-icon-mail-line",
  mediacentre: "fr-icon-book-2-line",
  library: "fr-icon-book-2-line",
  news: "fr-icon-newspaper-line",
  admin: "fr-icon-settings-5-line",
};

function when(at: string): string {
  return new Date(at).toLocaleString("fr-FR", { dateStyle: "medium", timeStyle: "short" });
}

export function Notifications({ path }: { path: string }) {
  if (path.split("?")[0] === "/notifications/preferences") return <Preferences />;
  return <Feed />;
}

// The feed: what happened for the person, newest first, a page at a time; following one marks it read.
function Feed() {
  const [pages, setPages] = useState<Notification[][]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState("");
  const [first, reload] = useLoad(async () => {
    const page = await get<FeedPage>("/api/timeline/v1/feed?size=20");
    setPages([page.items]);
    setNext(page.next);
    setUnread(page.unread);
    return page;
  }, []);
  const items = pages.flat();

  async function more() {
    if (!next) return;
    try {
      const page = await get<FeedPage>(`/api/timeline/v1/feed?${new URLSearchParams({ size: "20", before: next })}`);
      setPages((held) => [...held, page.items]);
      setNext(page.next);
    } catch (e) {
      setError(explain(e));
    }
  }

  async function read(ids: string[] | null) {
    try {
      const after = await call<{ unread: number }>("POST", "/api/timeline/v1/read", ids === null ? {} : { ids });
      setUnread(after.unread);
      setPages((held) => held.map((page) => page.map((n) => (ids === null || ids.includes(n.id) ? { ...n, read: true } : n))));
    } catch (e) {
      setError(explain(e));
    }
  }

  async function follow(event: React.MouseEvent<HTMLAnchorElement>, n: Notification) {
    event.preventDefault();
    if (!n.read) await read([n.id]);
    navigate(n.link);
  }

  return (
    <>
      <h1>Notifications</h1>
      <ul className={fr.cx("fr-btns-group", "fr-btns-group--inline-md", "fr-btns-group--sm", "fr-mb-2w")}>
        <li>
          <button className={fr.cx("fr-btn", "fr-btn--secondary", "fr-icon-check-line", "fr-btn--icon-left")} onClick={() => read(null).then(reload)}>
            Tout marquer comme lu
          </button>
        </li>
        <li>
          <A className={fr.cx("fr-btn", "fr-btn--tertiary", "fr-icon-settings-5-line", "fr-btn--icon-left")} href="/notifications/preferences">
            Comment être prévenu
          </A>
        </li>
      </ul>
      {error && <Failure message={error} />}
      <Show loaded={first}>
        {() =>
          items.length === 0 ? (
            <p>Rien de nouveau pour l'instant. Vous serez prévenu ici d'un message reçu, d'une ressource ajoutée à votre médiacentre ou d'un prêt du CDI.</p>
          ) : (
            <ul className="maille-list" aria-label="Vos notifications, de la plus récente à la plus ancienne">
              {items.map((n) => (
                <li key={n.id} className={n.read ? "" : "maille-unread"}>
                  <span className={fr.cx(KIND_ICONS[n.kind] as never ?? "fr-icon-notification-3-line", "fr-mr-1w")} aria-hidden="true" />
                  <a href={n.link} onClick={(e) => follow(e, n)}>
                    {n.read ? n.title : <strong>{n.title}</strong>}
                    {!n.read && <span className="fr-sr-only"> (non lue)</span>}
                  </a>
                  <br />
                  {n.text}
                  <br />
                  <small>{when(n.at)}</small>
                </li>
              ))}
            </ul>
          )
        }
      </Show>
      {next && (
        <button className={fr.cx("fr-btn", "fr-btn--secondary", "fr-mt-2w")} onClick={more}>
          Afficher les plus anciennes
        </button>
      )}
    </>
  );
}

// How the person wants to be told, kind by kind (a parent's default: a daily e-mail digest).
function Preferences() {
  const [loaded, reload] = useLoad(() => get<NotificationPreferences>("/api/timeline/v1/preferences"), []);
  const { attempt, outcome } = useOutcome();
  const choose = (kind: string, channel: Channel) =>
    attempt(async () => {
      await call("PUT", "/api/timeline/v1/preferences", { kinds: { [kind]: channel } });
      reload();
      return "Votre choix est enregistré.";
    });

  return (
    <>
      <h1>Comment être prévenu</h1>
      <p>
        <A href="/notifications">Retour aux notifications</A>
      </p>
      {outcome}
      <Show loaded={loaded}>
        {(prefs) => (
          <>
            <p>
              {prefs.email
                ? `Les e-mails sont envoyés à ${prefs.email} (l'adresse que votre établissement a donnée).`
                : "Votre établissement n'a pas donné d'adresse e-mail pour vous : vous êtes prévenu dans l'ENT seulement."}
            </p>
            {prefs.kinds.map((k) => (
              <div key={k.kind} className={fr.cx("fr-select-group")}>
                <label className={fr.cx("fr-label")} htmlFor={`pref-${k.kind}`}>
                  {k.label}
                  <span className={fr.cx("fr-hint-text")}>
                    {k.chosen ? "Votre choix" : "Réglage par défaut"}
                  </span>
                </label>
                <select
                  id={`pref-${k.kind}`}
                  className={fr.cx("fr-select")}
                  value={k.channel}
                  onChange={(e) => choose(k.kind, e.target.value as Channel)}
                >
                  {prefs.channels
                    .filter((c) => prefs.email || c.channel === "portal" || c.channel === "off" || c.channel === k.channel)
                    .map((c) => (
                      <option key={c.channel} value={c.channel}>
                        {c.label}
                      </option>
                    ))}
                </select>
              </div>
            ))}
          </>
        )}
      </Show>
    </>
  );
}

const DAMAGED =
  "Ce lien est incomplet ou abîmé : copiez-le en entier depuis l'e-mail, ou connectez-vous à l'ENT et choisissez « Comment être prévenu » dans vos notifications.";

// The page of an e-mail's "stop" link: works without signing in (the link's token says who).
export function Unsubscribe() {
  const token = new URLSearchParams(location.search).get("jeton") ?? "";
  const [loaded] = useLoad(
    () =>
      get<{ kinds: string[]; message: string }>(`/api/timeline/v1/unsubscribe?${new URLSearchParams({ token })}`).catch((e) => {
        if (e instanceof ApiError && e.status === 422) throw new Error(DAMAGED);
        throw e;
      }),
    [],
  );
  const [done, setDone] = useState("");
  const [error, setError] = useState("");

  async function confirm() {
    try {
      const answer = await call<{ message: string }>("POST", `/api/timeline/v1/unsubscribe?${new URLSearchParams({ token })}`);
      setDone(answer.message);
    } catch (e) {
      setError(explain(e));
    }
  }

  return (
    <>
      <h1>Ne plus recevoir d'e-mails de l'ENT</h1>
      {done ? (
        <Notice message={done} />
      ) : (
        <Show loaded={loaded}>
          {(what) => (
            <>
              <p>{what.message}</p>
              {error && <Failure message={error} />}
              <button className={fr.cx("fr-btn")} onClick={confirm}>
                Confirmer
              </button>
            </>
          )}
        </Show>
      )}
    </>
  );
}
