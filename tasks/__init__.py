"""Task registry and definitions: datasets -> text-to-text examples."""
