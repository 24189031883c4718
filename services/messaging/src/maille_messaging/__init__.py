"""The ENT mail: folders, threads, drafts and attachments, sent to persons and groups under the communication rules."""

__version__ = "0.1.0"
