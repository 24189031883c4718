import { useEffect, useRef, useState } from "react";
import { fr } from "@codegouvfr/react-dsfr";
import { call, explain, get, tagged, upload } from "../api";
import { navigate } from "../router";
import { useMe } from "../session";
import type { Attachment, Message, Recipient, Visible } from "../types";
import { longDate, profileName, size } from "../words";
import { Failure } from "./common";

const escape = (text: string) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const asHtml = (text: string) =>
  text.split(/\n{2,}/).map((p) => `<p>${escape(p).replace(/\n/g, "<br>")}</p>`).join("");
const asText = (html: string) => new DOMParser().parseFromString(html, "text/html").body.textContent ?? "";

interface Draft {
  id: string | null;
  etag: string | null;
}

// Writing a message: to whom (the picker offers only whom the rules let one write to), what, with which files.
// What is typed is saved as a draft as it goes; sending sends the draft.
export function Compose({ params }: { params: URLSearchParams }) {
  const me = useMe();
  const [to, setTo] = useState<Recipient[]>([]);
  const [subject, setSubject] = useState("");
  const [text, setText] = useState("");
  const [inReplyTo, setInReplyTo] = useState<string | null>(null);
  const [files, setFiles] = useState<Attachment[]>([]);
  const [progress, setProgress] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string>("");
  const [sending, setSending] = useState(false);
  const draft = useRef<Draft>({ id: null, etag: null });
  const saving = useRef<Promise<void>>(Promise.resolve());
  const ready = useRef(false);

  // A reply, a reply to all or a forward starts from the message.
  useEffect(() => {
    const group = params.get("groupe");
    if (group) setTo([{ type: "group", id: group, name: params.get("nom") ?? group }]);
    const person = params.get("a");
    if (person) setTo([{ type: "person", id: person, name: params.get("nom") ?? person }]);
    const kept = params.get("brouillon");
    if (kept) {
      // A draft taken up again: as it was saved, and saved over from now on.
      get<Message>(`/api/messaging/v1/messages/${kept}`).then(
        (m) => {
          setTo([...m.to, ...m.cc]);
          setSubject(m.subject);
          setText(asText(m.body.replace(/<\/p>/g, "</p>\n\n").replace(/<br\s*\/?>/g, "\n")).trim());
          setFiles(m.attachments);
          setInReplyTo(m.in_reply_to);
          draft.current = { id: m.id, etag: null };
          ready.current = true;
        },
        (e) => setError(explain(e)),
      );
      return;
    }
    const of = params.get("repondre") ?? params.get("transferer");
    if (!of) {
      ready.current = true;
      return;
    }
    get<Message>(`/api/messaging/v1/messages/${of}`).then(
      (m) => {
        const quoted = `\n\n--- Le ${longDate(m.at)}, ${m.sender.name} a écrit :\n${asText(m.body)}`;
        if (params.get("transferer")) {
          setSubject(m.subject.startsWith("TR :") ? m.subject : `TR : ${m.subject}`);
        } else {
          const everyone = params.get("tous")
            ? [...m.to, ...m.cc].filter((r) => !(r.type === "person" && r.id === me.id))
            : [];
          setTo([{ type: "person", id: m.sender.id, name: m.sender.name }, ...everyone.filter((r) => r.id !== m.sender.id)]);
          setSubject(m.subject.startsWith("RE :") ? m.subject : `RE : ${m.subject}`);
          setInReplyTo(m.id);
        }
        setText(quoted);
        ready.current = true;
      },
      (e) => setError(explain(e)),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const body = () => ({ to, subject, body: asHtml(text), ...(inReplyTo ? { in_reply_to: inReplyTo } : {}) });

  function save(): Promise<void> {
    saving.current = saving.current.then(async () => {
      const d = draft.current;
      const [answer, etag] = d.id
        ? await tagged<{ id: string }>("PUT", `/api/messaging/v1/drafts/${d.id}`, body(), d.etag ? { "if-match": d.etag } : {})
        : await tagged<{ id: string }>("POST", "/api/messaging/v1/drafts", body(), { "idempotency-key": crypto.randomUUID() });
      draft.current = { id: answer.id, etag };
      setSaved(`Brouillon enregistré à ${new Date().toLocaleTimeString("fr-FR", { hour: "2-digit", minute: "2-digit" })}`);
    });
    return saving.current;
  }

  // Saved two seconds after the last key.
  useEffect(() => {
    if (!ready.current || (!subject && !text && to.length === 0)) return;
    const timer = setTimeout(() => save().catch((e) => setError(explain(e))), 2000);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [to, subject, text]);

  async function attach(list: FileList | null) {
    if (!list) return;
    setError(null);
    try {
      if (!draft.current.id) await save();
      for (const file of Array.from(list)) {
        setProgress(0);
        const added = await upload<Attachment>(
          `/api/messaging/v1/drafts/${draft.current.id}/attachments?${new URLSearchParams({ name: file.name })}`,
          file,
          setProgress,
        );
        setFiles((f) => [...f, added]);
        draft.current.etag = null; // the draft's version moved with the file
      }
    } catch (e) {
      setError(explain(e));
    } finally {
      setProgress(null);
    }
  }

  async function send(event: React.FormEvent) {
    event.preventDefault();
    if (to.length === 0) return setError("Ajoutez au moins un destinataire.");
    setSending(true);
    setError(null);
    try {
      await save();
      await call("POST", `/api/messaging/v1/drafts/${draft.current.id}/send`, undefined, { "idempotency-key": crypto.randomUUID() });
      navigate("/messagerie?envoye=1");
    } catch (e) {
      setError(explain(e));
      setSending(false);
    }
  }

  return (
    <form onSubmit={send} aria-labelledby="ecrire">
      <h1 id="ecrire" className={fr.cx("fr-h2")}>Écrire un message</h1>
      {error && <Failure message={error} />}
      <Picker chosen={to} onChange={setTo} />
      <div className={fr.cx("fr-input-group")}>
        <label className={fr.cx("fr-label")} htmlFor="objet-message">Objet</label>
        <input className={fr.cx("fr-input")} id="objet-message" value={subject} maxLength={255} onChange={(e) => setSubject(e.target.value)} />
      </div>
      <div className={fr.cx("fr-input-group")}>
        <label className={fr.cx("fr-label")} htmlFor="texte-message">Message</label>
        <textarea className={fr.cx("fr-input")} id="texte-message" rows={10} value={text} onChange={(e) => setText(e.target.value)} />
      </div>
      <div className={fr.cx("fr-upload-group", "fr-mb-2w")}>
        <label className={fr.cx("fr-label")} htmlFor="pieces-jointes">
          Pièces jointes
          <span className={fr.cx("fr-hint-text")}>Documents, images ou PDF.</span>
        </label>
        <input className={fr.cx("fr-upload")} type="file" id="pieces-jointes" multiple onChange={(e) => attach(e.target.files)} />
        {progress !== null && (
          <p role="status">
            <label htmlFor="envoi-fichier">Envoi du fichier : </label>
            <progress id="envoi-fichier" max={1} value={progress} /> {Math.round(progress * 100)} %
          </p>
        )}
        {files.length > 0 && (
          <ul aria-label="Fichiers joints">
            {files.map((f) => (
              <li key={f.id}>{f.name} ({size(f.size)})</li>
            ))}
          </ul>
        )}
      </div>
      <p className={fr.cx("fr-text--sm")} role="status">{saved}</p>
      <button className={fr.cx("fr-btn", "fr-icon-send-plane-line", "fr-btn--icon-left")} type="submit" disabled={sending || progress !== null}>
        Envoyer
      </button>
    </form>
  );
}

// The recipient picker, a combobox: classes, groups, lists and persons one may write to, searched as one types.
function Picker({ chosen, onChange }: { chosen: Recipient[]; onChange: (r: Recipient[]) => void }) {
  const [q, setQ] = useState("");
  const [options, setOptions] = useState<Visible[]>([]);
  const [active, setActive] = useState(-1);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (q.trim().length < 2) {
      setOptions([]);
      return;
    }
    const timer = setTimeout(() => {
      get<Visible[]>(`/api/messaging/v1/recipients?${new URLSearchParams({ q, limit: "20" })}`).then(
        (found) => {
          setOptions(found.filter((v) => !chosen.some((c) => c.type === v.type && c.id === v.id)));
          setActive(-1);
          setError(null);
        },
        (e) => setError(explain(e)),
      );
    }, 200);
    return () => clearTimeout(timer);
  }, [q, chosen]);
  const pick = (v: Visible) => {
    onChange([...chosen, { type: v.type, id: v.id, name: v.name }]);
    setQ("");
    setOptions([]);
  };
  const label = (v: Visible) =>
    v.type === "person"
      ? `${v.name}${v.profiles.length ? ` (${v.profiles.map(profileName).join(", ")})` : ""}`
      : `${v.name} (${v.type === "group" ? "classe ou groupe" : "liste"}${v.size ? `, ${v.size} personnes` : ""})`;
  return (
    <div className={fr.cx("fr-input-group")}>
      <label className={fr.cx("fr-label")} htmlFor="destinataires">
        Destinataires
        <span className={fr.cx("fr-hint-text")}>Tapez le début d'un nom, d'une classe ou d'un groupe.</span>
      </label>
      {chosen.length > 0 && (
        <ul className={fr.cx("fr-tags-group")} aria-label="Destinataires choisis">
          {chosen.map((r) => (
            <li key={`${r.type}:${r.id}`}>
              <button
                type="button"
                className={fr.cx("fr-tag", "fr-tag--dismiss")}
                aria-label={`Retirer ${r.name ?? r.id}`}
                onClick={() => onChange(chosen.filter((c) => c !== r))}
              >
                {r.name ?? r.id}
              </button>
            </li>
          ))}
        </ul>
      )}
      <input
        className={fr.cx("fr-input")}
        id="destinataires"
        role="combobox"
        aria-expanded={options.length > 0}
        aria-controls="destinataires-choix"
        aria-autocomplete="list"
        aria-activedescendant={active >= 0 ? `destinataire-${active}` : undefined}
        autoComplete="off"
        value={q}
        onChange={(e) => setQ(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown") {
            e.preventDefault();
            setActive((a) => Math.min(a + 1, options.length - 1));
          } else if (e.key === "ArrowUp") {
            e.preventDefault();
            setActive((a) => Math.max(a - 1, 0));
          } else if (e.key === "Enter" && active >= 0 && options[active]) {
            e.preventDefault();
            pick(options[active]);
          } else if (e.key === "Escape") setOptions([]);
        }}
      />
      {error && <p className={fr.cx("fr-error-text")}>{error}</p>}
      <ul id="destinataires-choix" role="listbox" aria-label="Destinataires possibles" className="maille-picker-options" hidden={options.length === 0}>
        {options.map((v, n) => (
          <li key={`${v.type}:${v.id}`} id={`destinataire-${n}`} role="option" aria-selected={n === active} onMouseDown={(e) => e.preventDefault()} onClick={() => pick(v)}>
            {label(v)}
          </li>
        ))}
      </ul>
      <p className={fr.cx("fr-sr-only")} aria-live="polite">
        {q.trim().length >= 2 ? `${options.length} destinataire${options.length > 1 ? "s" : ""} possible${options.length > 1 ? "s" : ""}` : ""}
      </p>
    </div>
  );
}
