"""The lowest layer: registries and usage errors, presets and protocol switches, run and train
configurations, a run's identity and configuration key, results I/O with atomic writes, plugins,
threads, precision, memory and progress. Imports nothing else of the project's."""
