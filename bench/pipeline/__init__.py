"""One run's pipeline: data encoding and batching, training, evaluation, checkpoints, stages
(source prompts trained once), the run grid, trackers and the runner that ties them together."""
