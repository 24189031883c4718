// What the API answers, as far as the portal reads it.
import type { Profile, School } from "./words";

export interface Person {
  id: string;
  first_name: string;
  last_name: string;
  kind: string;
  profiles: Profile[];
  classes: string[];
  groups?: string[];
}

export interface Me extends Person {
  schools: School[];
  children: Person[];
  operator: boolean;
  administers: string[];
  observes?: boolean; // the observatory opens them a dashboard (read by the portal, not the directory)
}

export interface Folder {
  id: string;
  name: string;
  parent: string | null;
  system: boolean;
  total: number;
  unread: number;
}

export interface Correspondent {
  id: string;
  name: string;
}

export interface Entry {
  id: string;
  thread: string;
  folder: string;
  unread: boolean;
  at: string;
  sender: Correspondent;
  to: string;
  subject: string;
  snippet: string;
  attachments: number;
}

export interface Recipient {
  type: "person" | "group" | "list";
  id: string;
  name?: string | null;
}

export interface Attachment {
  id: string;
  name: string;
  type: string;
  size: number;
}

export interface Message {
  id: string;
  thread: string;
  state: "draft" | "scheduled" | "sent";
  folder: string;
  unread: boolean;
  sender: Correspondent;
  to: Recipient[];
  cc: Recipient[];
  bcc: Recipient[];
  subject: string;
  body: string;
  attachments: Attachment[];
  in_reply_to: string | null;
  at: string;
  version: number | null;
}

export interface Visible {
  type: "person" | "group" | "list";
  id: string;
  name: string;
  profiles: string[];
  size: number | null;
}

export interface Resource {
  idRessource: string;
  nomRessource?: string | null;
  nomEditeur?: string | null;
  lien: string;
  favori: boolean;
  urlVignette?: string | null;
  typePresentation?: { code: string; nom: string } | null;
  typologieDocument?: { uri: string; nom: string }[];
  domaineEnseignement?: { uri: string; nom: string }[];
  niveauEducatif?: { uri: string; nom: string }[];
}

export interface Loan {
  recordId: number;
  title: string;
  location: string;
  start: string | null;
  due: string | null;
}

export interface Reservation {
  id: number;
  recordId: number;
  rank: number;
  until: string | null;
  location: string;
}

export interface LibraryAccount {
  schools: { uai: string; opac?: string; loans: { late: Loan[]; current: Loan[]; past: Loan[] }; reservations: Reservation[] }[];
  missing: { uai: string; reason: string }[];
}

export interface LibraryResult {
  id: number;
  uai: string;
  title: string;
  authors: string[];
  publisher: string | null;
  year: string | null;
  summary: string | null;
  type: string | null;
  available: number | null;
  copies: number | null;
}

export interface Notification {
  id: string;
  kind: string;
  title: string;
  text: string;
  link: string;
  at: string;
  read: boolean;
}

export interface FeedPage {
  items: Notification[];
  unread: number;
  next: string | null;
}

export type Channel = "portal" | "immediate" | "digest" | "off";

export interface NotificationPreferences {
  kinds: { kind: string; label: string; channel: Channel; default: Channel; chosen: boolean }[];
  channels: { channel: Channel; label: string }[];
  email: string | null;
}

export interface NewsAudience {
  scope: "school" | "group" | "circonscription";
  id: string;
  profiles: string[];
}

export interface NewsItem {
  id: string;
  audience: NewsAudience;
  title: string;
  body: string;
  author_name: string;
  state: "draft" | "scheduled" | "published" | "withdrawn";
  comments: boolean;
  files: { id: string; name: string; type: string; size: number }[];
  publish_at: string | null;
  published_at: string | null;
  expires_at: string | null;
  read: boolean | null;
  comments_list: { id: string; author_name: string; text: string; at: string; approved: boolean }[] | null;
  stats: { profile: string; reached: number; read: number }[] | null;
}

export interface NewsBoard {
  key: string;
  scope: string;
  id: string;
  name: string;
  school?: string | null;
}

// Support: help requests, queues, the knowledge base.
export interface Choice {
  code: string;
  label: string;
}

export interface SupportOverview {
  schools: { uai: string; name: string }[];
  categories: Choice[];
  statuses: Choice[];
  referent_of: { uai: string; name: string }[];
  directs: { uai: string; name: string }[];
  desks: { id: string; name: string; kind: string }[];
  writes: string[];
}

export interface HelpRequestSummary {
  id: string;
  subject: string;
  category: string;
  category_label: string;
  status: string;
  status_label: string;
  uai: string;
  school_name: string;
  desk: string;
  desk_name: string;
  author_name: string;
  profile: string;
  assignee: string | null;
  assignee_name: string | null;
  opened_at: string;
  updated_at: string;
  overdue: "first_answer" | "resolution" | null;
  tracker_issue: number | null;
}

export interface HelpMessage {
  id: string;
  at: string;
  author_name: string;
  role: "author" | "referent" | "agent" | "tracker";
  by: string;
  text: string;
  internal: boolean;
}

export interface HelpRequest extends HelpRequestSummary {
  description: string;
  context: { page: string; browser: string; failed_requests: string[] } | null;
  files: { id: string; name: string; type: string; size: number }[];
  messages: HelpMessage[];
  can: { reply: boolean; note: boolean; assign: boolean; escalate: boolean; statuses: string[] };
}

export interface HelpPage {
  items: HelpRequestSummary[];
  next: string | null;
  counts: Record<string, number>;
}

export interface ArticleHit {
  id: string;
  title: string;
  category: string;
  category_label: string;
  excerpt: string;
  tutorial: boolean;
  helped: number;
}

export interface Article {
  id: string;
  title: string;
  category: string;
  category_label: string;
  profiles: string[];
  scope: string;
  author_name: string;
  updated_at: string;
  helped: number;
  unhelped: number;
  tutorial: boolean;
  body: string;
  html: string;
}
