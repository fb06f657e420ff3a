"""Backbones: names, configs and tokenizers without torch (catalog), the frozen torch models that
carry soft prompts (model) and parameter counts without downloads (counting). Above core, tasks
and methods."""
