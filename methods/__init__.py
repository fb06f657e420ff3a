"""Prompt-transfer methods behind one `Method` interface, one folder per method."""
