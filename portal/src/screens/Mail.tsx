import { useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { call, explain, get } from "../api";
import { navigate } from "../router";
import type { Entry, Folder, Message } from "../types";
import { longDate, size, when } from "../words";
import { A, Failure, Notice, Show, useLoad } from "./common";
import { Compose } from "./Compose";

const SYSTEM_NAMES: Record<string, string> = {
  inbox: "Boîte de réception",
  sent: "Envoyés",
  drafts: "Brouillons",
  scheduled: "Envois programmés",
  trash: "Corbeille",
};

export const folderName = (f: Folder) => (f.system ? SYSTEM_NAMES[f.id] ?? f.name : f.name);

// The mail: folders beside the page of the folder open, a message, or the form to write one.
export function Mail({ path }: { path: string }) {
  const [url, query] = path.split("?");
  const parts = url.split("/").slice(2); // after /messagerie
  const params = new URLSearchParams(query ?? "");
  const [folders, reloadFolders] = useLoad(() => get<Folder[]>("/api/messaging/v1/folders"), [path]);
  let content: React.ReactNode;
  if (parts[0] === "message" && parts[1])
    content = <Read id={parts[1]} onChange={reloadFolders} folders={folders.state === "ok" ? folders.value : []} />;
  else if (parts[0] === "ecrire") content = <Compose params={params} />;
  else if (parts[0] === "recherche") content = <Search q={params.get("q") ?? ""} />;
  else
    content = (
      <Listing
        folder={parts[0] === "dossier" && parts[1] ? parts[1] : "inbox"}
        cursor={params.get("apres")}
        folders={folders.state === "ok" ? folders.value : []}
      />
    );
  return (
    <div className={fr.cx("fr-grid-row", "fr-grid-row--gutters")}>
      <div className={fr.cx("fr-col-12", "fr-col-md-3")}>
        <p>
          <A className={fr.cx("fr-btn", "fr-icon-edit-line", "fr-btn--icon-left")} href="/messagerie/ecrire">
            Écrire un message
          </A>
        </p>
        <form
          role="search"
          className={fr.cx("fr-mb-2w")}
          onSubmit={(e) => {
            e.preventDefault();
            const q = new FormData(e.currentTarget).get("q");
            navigate(`/messagerie/recherche?${new URLSearchParams({ q: String(q ?? "") })}`);
          }}
        >
          <label className={fr.cx("fr-label")} htmlFor="recherche-messages">Rechercher dans mes messages</label>
          <div className={fr.cx("fr-search-bar")}>
            <input className={fr.cx("fr-input")} id="recherche-messages" name="q" type="search" minLength={2} />
            <button className={fr.cx("fr-btn")} type="submit" title="Rechercher">Rechercher</button>
          </div>
        </form>
        {/* The DSFR's side menu: beside the messages on a desktop, folded under a "Dossiers" button on a phone (the
            messages come first there). */}
        <nav className={fr.cx("fr-sidemenu")} aria-label="Dossiers de la messagerie">
          <div className={fr.cx("fr-sidemenu__inner")}>
            <button className={fr.cx("fr-sidemenu__btn")} aria-controls="dossiers" aria-expanded="false">
              Dossiers
            </button>
            <div className={`${fr.cx("fr-collapse")} maille-folders`} id="dossiers">
              <Show loaded={folders}>{(all) => <FolderTree folders={all} parent={null} />}</Show>
              <NewFolder folders={folders.state === "ok" ? folders.value : []} onMade={reloadFolders} />
              <QuotaLine />
            </div>
          </div>
        </nav>
      </div>
      <div className={fr.cx("fr-col-12", "fr-col-md-9")}>{content}</div>
    </div>
  );
}

function FolderTree({ folders, parent }: { folders: Folder[]; parent: string | null }) {
  const here = folders.filter((f) => (f.parent ?? null) === parent);
  if (here.length === 0) return null;
  return (
    <ul className={fr.cx("fr-sidemenu__list")}>
      {here.map((f) => (
        <li key={f.id} className={fr.cx("fr-sidemenu__item")}>
          <A
            className={fr.cx("fr-sidemenu__link")}
            href={f.id === "inbox" ? "/messagerie" : `/messagerie/dossier/${f.id}`}
            aria-current={isOpen(f.id) ? "page" : undefined}
          >
            {folderName(f)}
            {f.unread > 0 && (
              <span className={fr.cx("fr-badge", "fr-badge--sm", "fr-badge--info", "fr-ml-1w")}>
                {f.unread}
                <span className={fr.cx("fr-sr-only")}> non lu{f.unread > 1 ? "s" : ""}</span>
              </span>
            )}
          </A>
          <FolderTree folders={folders} parent={f.id} />
        </li>
      ))}
    </ul>
  );
}

function isOpen(folder: string): boolean {
  const p = location.pathname;
  return folder === "inbox" ? p === "/messagerie" : p === `/messagerie/dossier/${folder}`;
}

function Listing({ folder, cursor, folders }: { folder: string; cursor: string | null; folders: Folder[] }) {
  const query = new URLSearchParams({ limit: "25", ...(cursor ? { cursor } : {}) });
  const [page] = useLoad(
    () => get<{ entries: Entry[]; next: string | null }>(`/api/messaging/v1/folders/${folder}/messages?${query}`),
    [folder, cursor],
  );
  const current = folders.find((f) => f.id === folder);
  const base = folder === "inbox" ? "/messagerie" : `/messagerie/dossier/${folder}`;
  return (
    <>
      <h1 className={fr.cx("fr-h2")}>{current ? folderName(current) : "Messagerie"}</h1>
      {new URLSearchParams(location.search).get("envoye") && <Notice message="Message envoyé." />}
      <Show loaded={page}>
        {({ entries, next }) => (
          <>
            <Entries entries={entries} empty="Aucun message dans ce dossier." />
            <nav aria-label="Pages du dossier" className={fr.cx("fr-mt-2w")}>
              {cursor && (
                <A className={fr.cx("fr-btn", "fr-btn--secondary", "fr-mr-2w")} href={base}>
                  Premiers messages
                </A>
              )}
              {next && (
                <A className={fr.cx("fr-btn", "fr-btn--secondary")} href={`${base}?${new URLSearchParams({ apres: next })}`}>
                  Messages plus anciens
                </A>
              )}
            </nav>
          </>
        )}
      </Show>
    </>
  );
}

function Entries({ entries, empty }: { entries: Entry[]; empty: string }) {
  if (entries.length === 0) return <p>{empty}</p>;
  return (
    <ul className="maille-list" aria-label="Messages">
      {entries.map((e) => (
        <li key={e.id} className={e.unread ? "maille-unread" : undefined}>
          {e.unread && <span className={fr.cx("fr-sr-only")}>Non lu : </span>}
          <A href={`/messagerie/message/${e.id}`}>{e.subject || "(sans objet)"}</A>
          <br />
          <span className={fr.cx("fr-text--sm")}>
            {e.folder === "sent" || e.folder === "drafts" ? `À ${e.to}` : `De ${e.sender.name}`} · {when(e.at)}
            {e.attachments > 0 && ` · ${e.attachments} pièce${e.attachments > 1 ? "s" : ""} jointe${e.attachments > 1 ? "s" : ""}`}
          </span>
          <br />
          <span className={fr.cx("fr-text--sm")}>{e.snippet}</span>
        </li>
      ))}
    </ul>
  );
}

function Search({ q }: { q: string }) {
  const [found] = useLoad(
    () => (q.length < 2 ? Promise.resolve({ entries: [] as Entry[] }) : get<{ entries: Entry[] }>(`/api/messaging/v1/search?${new URLSearchParams({ q })}`)),
    [q],
  );
  return (
    <>
      <h1 className={fr.cx("fr-h2")}>Recherche : « {q} »</h1>
      <Show loaded={found}>{({ entries }) => <Entries entries={entries} empty="Aucun message ne correspond." />}</Show>
    </>
  );
}

function QuotaLine() {
  const [quota] = useLoad(() => get<{ used: number; limit: number }>("/api/messaging/v1/quota"), []);
  const known = quota.state === "ok" ? quota.value : null;
  return (
    <p className={fr.cx("fr-text--sm", "fr-mt-2w")}>
      <label htmlFor="espace-fichiers">
        Espace des pièces jointes : {known ? `${size(known.used)} sur ${size(known.limit)}` : "…"}
      </label>
      <br />
      <progress id="espace-fichiers" max={known?.limit ?? 1} value={known?.used ?? 0} />
    </p>
  );
}

function NewFolder({ folders, onMade }: { folders: Folder[]; onMade: () => void }) {
  const [error, setError] = useState<string | null>(null);
  async function make(event: React.FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const parent = String(form.get("parent") ?? "");
    try {
      await call("POST", "/api/messaging/v1/folders", { name: String(form.get("name") ?? ""), ...(parent ? { parent } : {}) });
      (event.target as HTMLFormElement).reset();
      setError(null);
      onMade();
    } catch (e) {
      setError(explain(e));
    }
  }
  return (
    <details className={fr.cx("fr-mt-2w")}>
      <summary>Nouveau dossier</summary>
      <form onSubmit={make}>
        {error && <p className={fr.cx("fr-error-text")}>{error}</p>}
        <label className={fr.cx("fr-label")} htmlFor="nom-dossier">Nom du dossier</label>
        <input className={fr.cx("fr-input")} id="nom-dossier" name="name" required maxLength={100} />
        <label className={fr.cx("fr-label", "fr-mt-1w")} htmlFor="dossier-parent">Dans</label>
        <select className={fr.cx("fr-select")} id="dossier-parent" name="parent">
          <option value="">(à la racine)</option>
          {folders.filter((f) => !f.system).map((f) => (
            <option key={f.id} value={f.id}>{f.name}</option>
          ))}
        </select>
        <button className={fr.cx("fr-btn", "fr-btn--sm", "fr-mt-1w")} type="submit">Créer</button>
      </form>
    </details>
  );
}

function Read({ id, onChange, folders }: { id: string; onChange: () => void; folders: Folder[] }) {
  const [thread, reload] = useLoad(async () => {
    const message = await get<Message>(`/api/messaging/v1/messages/${id}`);
    if (message.unread) {
      await call("POST", "/api/messaging/v1/messages/read", { ids: [id] });
      onChange();
    }
    const all = await get<Message[]>(`/api/messaging/v1/threads/${message.thread}`);
    return { message, earlier: all.filter((m) => m.id !== id && new Date(m.at) < new Date(message.at)) };
  }, [id]);
  const [status, setStatus] = useState<{ ok: boolean; text: string } | null>(null);
  async function act(path: string, body: unknown, done: string, then?: string) {
    try {
      await call("POST", path, body);
      onChange();
      if (then) navigate(then);
      else {
        setStatus({ ok: true, text: done });
        reload();
      }
    } catch (error) {
      setStatus({ ok: false, text: explain(error) });
    }
  }
  async function recall(message: string) {
    try {
      const done = await call<{ recalled: number; kept: number }>("POST", `/api/messaging/v1/messages/${message}/recall`);
      setStatus({
        ok: true,
        text: `${done.recalled} copie${done.recalled > 1 ? "s" : ""} reprise${done.recalled > 1 ? "s" : ""} ; ${done.kept} déjà lue${done.kept > 1 ? "s" : ""}.`,
      });
    } catch (error) {
      setStatus({ ok: false, text: explain(error) });
    }
  }
  return (
    <Show loaded={thread}>
      {({ message, earlier }) => (
        <article aria-labelledby="objet">
          <h1 id="objet" className={fr.cx("fr-h3")}>{message.subject || "(sans objet)"}</h1>
          {status && (status.ok ? <Notice message={status.text} /> : <Failure message={status.text} />)}
          <p className={fr.cx("fr-text--sm")}>
            De <strong>{message.sender.name}</strong> · le {longDate(message.at)}
            <br />À {message.to.map((r) => r.name ?? r.id).join(", ")}
            {message.cc.length > 0 && <><br />Copie à {message.cc.map((r) => r.name ?? r.id).join(", ")}</>}
          </p>
          {message.state === "draft" && (
            <p>
              <A className={fr.cx("fr-btn", "fr-icon-edit-line", "fr-btn--icon-left")} href={`/messagerie/ecrire?${new URLSearchParams({ brouillon: id })}`}>
                Reprendre le brouillon
              </A>
            </p>
          )}
          <ul className={fr.cx("fr-btns-group", "fr-btns-group--inline-md", "fr-btns-group--sm", "fr-btns-group--icon-left")}>
            <li><A className={fr.cx("fr-btn", "fr-icon-reply-line")} href={`/messagerie/ecrire?${new URLSearchParams({ repondre: id })}`}>Répondre</A></li>
            <li><A className={fr.cx("fr-btn", "fr-btn--secondary", "fr-icon-reply-all-line")} href={`/messagerie/ecrire?${new URLSearchParams({ repondre: id, tous: "1" })}`}>Répondre à tous</A></li>
            <li><A className={fr.cx("fr-btn", "fr-btn--secondary", "fr-icon-share-forward-line")} href={`/messagerie/ecrire?${new URLSearchParams({ transferer: id })}`}>Transférer</A></li>
            <li><button className={fr.cx("fr-btn", "fr-btn--tertiary", "fr-icon-mail-unread-line")} onClick={() => act("/api/messaging/v1/messages/read", { ids: [id], unread: true }, "Marqué comme non lu.", "/messagerie")}>Marquer non lu</button></li>
            <li><button className={fr.cx("fr-btn", "fr-btn--tertiary")} onClick={() => act("/api/messaging/v1/messages/trash", { ids: [id] }, "Mis à la corbeille.", "/messagerie")}>Mettre à la corbeille</button></li>
            {message.folder === "sent" && (
              <li><button className={fr.cx("fr-btn", "fr-btn--tertiary")} onClick={() => recall(message.id)}>Rappeler le message</button></li>
            )}
          </ul>
          {message.folder !== "sent" && message.folder !== "drafts" && (
            <form
              className={fr.cx("fr-mb-2w")}
              onSubmit={(e) => {
                e.preventDefault();
                const folder = String(new FormData(e.currentTarget).get("folder"));
                act("/api/messaging/v1/messages/move", { ids: [id], folder }, "Message déplacé.");
              }}
            >
              <label className={fr.cx("fr-label")} htmlFor="deplacer">Déplacer vers</label>
              <div className={fr.cx("fr-grid-row")}>
                <select className={fr.cx("fr-select", "fr-col")} id="deplacer" name="folder" defaultValue={message.folder}>
                  {folders
                    .filter((f) => !f.system || f.id === "inbox")
                    .map((f) => (
                      <option key={f.id} value={f.id}>{folderName(f)}</option>
                    ))}
                </select>
                <button className={fr.cx("fr-btn", "fr-btn--secondary", "fr-ml-1w")} type="submit">Déplacer</button>
              </div>
            </form>
          )}
          {/* The body was cleaned when stored (no script, no handler, no unsafe link): shown as the sender wrote it. */}
          <div className={`maille-body ${fr.cx("fr-my-3w")}`} dangerouslySetInnerHTML={{ __html: message.body }} />
          {message.attachments.length > 0 && (
            <section aria-label="Pièces jointes">
              <h2 className={fr.cx("fr-h6")}>Pièces jointes</h2>
              <ul>
                {message.attachments.map((a) => (
                  <li key={a.id}>
                    <a className={fr.cx("fr-link", "fr-icon-attachment-line", "fr-link--icon-left")} href={`/api/messaging/v1/messages/${id}/attachments/${a.id}`} download={a.name}>
                      {a.name} ({size(a.size)})
                    </a>
                  </li>
                ))}
              </ul>
            </section>
          )}
          {earlier.length > 0 && (
            <section aria-label="Messages précédents de la conversation" className={fr.cx("fr-mt-4w")}>
              <h2 className={fr.cx("fr-h6")}>Plus tôt dans la conversation</h2>
              {earlier.map((m) => (
                <details key={m.id} className={fr.cx("fr-mb-1w")}>
                  <summary>{m.sender.name} · {when(m.at)}</summary>
                  <div className="maille-body" dangerouslySetInnerHTML={{ __html: m.body }} />
                </details>
              ))}
            </section>
          )}
        </article>
      )}
    </Show>
  );
}
